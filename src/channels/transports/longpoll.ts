// The LongPoll transport (Phoenix's long_poll.ex), framework-neutral: request object in, response
// out; signed `lp1.` sessions, GET windows, ndjson POSTs. Must not know topics or channels.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { negotiateVersion, type Serializer } from '../serializers/serializer.ts';
import { v1 } from '../serializers/v1.ts';
import { v2 } from '../serializers/v2.ts';
import type { Session, Transport } from '../session.ts';
import { lastQueryValue, queryValues, type SocketEndpoint } from './connect.ts';

export interface LongPollRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string | undefined;
}

export interface LongPollResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface LongPollTransportOptions {
  endpoint: SocketEndpoint;
  /** How long a GET waits for messages (Phoenix: 10 s); sessions expire after 1.5 windows unpolled. */
  windowMs: number;
  /** POST bodies above this get HTTP 413. */
  maxBodyBytes: number;
  /** This node's id: written into session tokens, so any node can tell whose session it is. */
  node?: string;
  /**
   * Hands a request for another node's session to that node (over the bus) and returns its answer.
   * Without it (one node), such a request gets 410 and the client starts a new session.
   */
  forward?: (node: string, req: LongPollRequest) => Promise<LongPollResponse>;
}

const SESSION_PREFIX = 'lp1.';
/** Phoenix reads at most this many ndjson lines per POST; the rest are ignored. */
const MAX_LINES = 100;
const EXPIRE_AFTER_WINDOWS = 1.5;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const CORS = { 'access-control-allow-origin': '*' };
const JSON_HEADERS = {
  ...CORS,
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
};

function json(body: string, status = 200): LongPollResponse {
  return { status, headers: JSON_HEADERS, body };
}

const GONE = json('{"status":410}');
const FORBIDDEN = json('{"status":403}');
const UNAVAILABLE = json('{"status":500}');
const ACK = json('{"status":200}');
const TIMED_OUT = json('{"status":408}');
// HTTP errors carry the logical `status` phoenix.js reads (any status but 200 fails the request,
// as Phoenix's empty body does) and api.md's error body for everyone else.
const BAD_REQUEST = json(
  '{"status":400,"error":{"code":"bad_request","message":"a message in the body is malformed"}}',
  400,
);
const TOO_LARGE = json(
  '{"status":413,"error":{"code":"payload_too_large","message":"the body is larger than the frame limit"}}',
  413,
);

function header(req: LongPollRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[value.length - 1] : value;
}

/** One LongPoll session: a buffer of frames that GETs take, and the Transport its session writes to. */
class LongPollSession implements Transport {
  readonly token: string;
  readonly userId: string;
  readonly serializer: Serializer;
  readonly owner: LongPollTransport;
  session!: Session;
  frames: string[] = [];
  bytes = 0;
  /** The held GET, if any, and when its window ends. */
  waiter: ((res: LongPollResponse) => void) | null = null;
  deadline = 0;
  lastPoll: number;
  ended = false;
  #flushQueued = false;
  readonly #flush = () => {
    this.#flushQueued = false;
    if (this.waiter && this.frames.length > 0) this.respond(this.take());
  };

  constructor(owner: LongPollTransport, token: string, userId: string, serializer: Serializer, now: number) {
    this.owner = owner;
    this.token = token;
    this.userId = userId;
    this.serializer = serializer;
    this.lastPoll = now;
  }

  buffered(): number {
    return this.bytes;
  }

  write(frame: string): void {
    if (this.ended) return;
    this.frames.push(frame);
    this.bytes += frame.length;
    // Frames emitted in one tick (a reply and its phx_close) go out in one response.
    if (this.waiter && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  close(_code: number, _reason: string): void {
    this.owner.end(this);
  }

  /** Everything buffered, as the GET body: messages are the serialized frames as strings. */
  take(): LongPollResponse {
    const messages = this.frames.map((f) => JSON.stringify(f)).join(',');
    this.frames = [];
    this.bytes = 0;
    return json(`{"status":200,"token":${JSON.stringify(this.token)},"messages":[${messages}]}`);
  }

  respond(res: LongPollResponse): void {
    const waiter = this.waiter;
    this.waiter = null;
    this.lastPoll = Date.now();
    waiter?.(res);
    if (res.status === 200 && !this.ended) this.session.drained();
  }

  empty(): LongPollResponse {
    return json(`{"status":204,"token":${JSON.stringify(this.token)},"messages":[]}`);
  }
}

export class LongPollTransport {
  readonly #o: LongPollTransportOptions;
  readonly #key = randomBytes(32);
  readonly #sessions = new Map<string, LongPollSession>();
  #timer: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(opts: LongPollTransportOptions) {
    this.#o = opts;
  }

  get size(): number {
    return this.#sessions.size;
  }

  async handle(req: LongPollRequest): Promise<LongPollResponse> {
    const method = req.method.toUpperCase();
    if (method === 'OPTIONS') {
      return {
        status: 200,
        headers: {
          ...CORS,
          'access-control-allow-headers': header(req, 'access-control-request-headers') ?? '',
          'access-control-allow-methods': 'get, post, options',
          'access-control-max-age': '3600',
        },
        body: '',
      };
    }
    if (method !== 'GET' && method !== 'POST') return BAD_REQUEST;
    const { endpoint } = this.#o;
    if (!endpoint.origins.allows(req.headers.origin)) {
      endpoint.refusals.refused('longpoll', 403, 'origin not allowed');
      return FORBIDDEN;
    }
    const q = req.url.indexOf('?');
    const search = new URLSearchParams(q === -1 ? '' : req.url.slice(q + 1));
    const presented = this.#sessionToken(req, search);
    // A session of another node (several processes behind one port, or machines behind a balancer
    // without sticky routing): the node that holds it answers.
    const owner = presented === undefined ? undefined : this.#foreignNode(presented);
    if (owner !== undefined) return this.#o.forward ? this.#o.forward(owner, req) : GONE;
    if (method === 'POST') {
      const lp = presented === undefined ? undefined : this.#lookup(presented);
      return lp ? this.#post(lp, req) : GONE;
    }
    if (presented !== undefined) {
      const lp = this.#lookup(presented);
      return lp ? this.#poll(lp) : GONE;
    }
    return this.#create(req, search);
  }

  /** Ends a session: its channels end, a held GET learns the session is gone, later requests get 410. */
  end(lp: LongPollSession): void {
    if (lp.ended) return;
    lp.ended = true;
    this.#sessions.delete(lp.token);
    this.#o.endpoint.quota.give(lp.userId);
    lp.session.end();
    if (lp.waiter) lp.respond(GONE);
    if (this.#sessions.size === 0) this.#stopTimer();
  }

  /** Refuses new sessions; open ones carry on until close(). */
  stopAccepting(): void {
    this.#closing = true;
  }

  async close(code: number, reason: string): Promise<void> {
    this.#closing = true;
    for (const lp of [...this.#sessions.values()]) lp.session.fail(code, reason);
    this.#stopTimer();
  }

  // ---- session tokens (6.3) ----

  #sign(id: string): string {
    return createHmac('sha256', this.#key).update(id).digest('base64url');
  }

  /** `lp1.<node>.<id>.<signature of node.id>`, the node as base64url. */
  #newToken(): string {
    const signed = `${this.#tag}.${randomBytes(18).toString('base64url')}`;
    return `${SESSION_PREFIX}${signed}.${this.#sign(signed)}`;
  }

  get #tag(): string {
    return Buffer.from(this.#o.node ?? '').toString('base64url');
  }

  /** The node named by a session token when it is not this one (its signature is that node's to check). */
  #foreignNode(token: string): string | undefined {
    if (!token.startsWith(SESSION_PREFIX)) return undefined;
    const end = token.indexOf('.', SESSION_PREFIX.length);
    if (end === -1) return undefined;
    const tag = token.slice(SESSION_PREFIX.length, end);
    if (tag === this.#tag || !/^[A-Za-z0-9_-]{1,400}$/.test(tag)) return undefined;
    return Buffer.from(tag, 'base64url').toString('utf8');
  }

  /**
   * The session token: the X-Phoenix-Longpoll-Token header, else the LAST `token` query value
   * if it is a session token (phoenix.js <= 1.8 sends the connect JWT first, the session last).
   */
  #sessionToken(req: LongPollRequest, search: URLSearchParams): string | undefined {
    const fromHeader = header(req, 'x-phoenix-longpoll-token');
    if (fromHeader) return fromHeader;
    const values = queryValues(search, 'token');
    const last = values[values.length - 1];
    return typeof last === 'string' && last.startsWith(SESSION_PREFIX) ? last : undefined;
  }

  /** The live session of a genuine token; undefined for forged, unknown or expired ones. */
  #lookup(token: string): LongPollSession | undefined {
    if (!token.startsWith(SESSION_PREFIX)) return undefined;
    const dot = token.lastIndexOf('.');
    if (dot <= SESSION_PREFIX.length) return undefined;
    const given = Buffer.from(token.slice(dot + 1));
    const expected = Buffer.from(this.#sign(token.slice(SESSION_PREFIX.length, dot)));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return this.#sessions.get(token);
  }

  // ---- requests ----

  async #create(req: LongPollRequest, search: URLSearchParams): Promise<LongPollResponse> {
    const { endpoint } = this.#o;
    if (this.#closing) return UNAVAILABLE;
    const version = negotiateVersion(lastQueryValue(search, 'vsn'));
    if (version === undefined) {
      endpoint.refusals.refused('longpoll', 403, 'unsupported vsn');
      return FORBIDDEN;
    }
    // The connect JWT is the first `token` value that is not a session token.
    const jwt =
      queryValues(search, 'token').find(
        (v): v is string => typeof v === 'string' && v !== '' && !v.startsWith(SESSION_PREFIX),
      ) ?? header(req, 'x-phoenix-authtoken');
    const userId = await endpoint.authenticate(jwt);
    if (userId === undefined) {
      endpoint.refusals.refused('longpoll', 403, 'invalid token');
      return FORBIDDEN;
    }
    if (this.#closing) return UNAVAILABLE;
    if (!endpoint.quota.take(userId)) {
      endpoint.refusals.refused('longpoll', 403, 'too many sockets for this user');
      return FORBIDDEN;
    }
    const lp = new LongPollSession(this, this.#newToken(), userId, version === 1 ? v1 : v2, Date.now());
    lp.session = endpoint.openSession(userId, lp);
    this.#sessions.set(lp.token, lp);
    this.#startTimer();
    return json(`{"status":410,"token":${JSON.stringify(lp.token)},"messages":[]}`);
  }

  #poll(lp: LongPollSession): Promise<LongPollResponse> | LongPollResponse {
    const now = Date.now();
    lp.lastPoll = now;
    if (lp.waiter) lp.respond(lp.empty()); // a newer poll takes over the session
    if (lp.frames.length > 0) {
      const res = lp.take();
      lp.session.drained();
      return res;
    }
    return new Promise((resolve) => {
      lp.waiter = resolve;
      lp.deadline = now + this.#o.windowMs;
    });
  }

  async #post(lp: LongPollSession, req: LongPollRequest): Promise<LongPollResponse> {
    const body = req.body ?? '';
    if (Buffer.byteLength(body) > this.#o.maxBodyBytes) return TOO_LARGE;
    const ndjson = (header(req, 'content-type') ?? '').toLowerCase().includes('application/x-ndjson');
    const lines = ndjson ? body.split('\n') : [body];
    const ser = lp.serializer;
    const messages = [];
    for (let i = 0; i < lines.length && messages.length < MAX_LINES; i++) {
      const line = ndjson && lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
      if (ndjson && line === '') continue;
      let msg: ReturnType<Serializer['decodeBinary']>;
      if (!ndjson || line[0] === '[' || line[0] === '{') {
        msg = ser.decode(line);
      } else {
        msg = BASE64.test(line) ? ser.decodeBinary(Buffer.from(line, 'base64')) : undefined;
      }
      if (msg === undefined || msg === 'unsupported') {
        lp.session.fail(msg === undefined ? 1007 : 1003, 'malformed message');
        return BAD_REQUEST;
      }
      messages.push(msg);
    }
    for (const msg of messages) {
      lp.session.receive(msg);
      if (lp.ended) return GONE;
    }
    const settled = lp.session.settled();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(resolve, this.#o.windowMs, 'timeout');
    });
    const outcome = await Promise.race([settled, timedOut]);
    clearTimeout(timer);
    if (lp.ended) return GONE;
    return outcome === 'timeout' ? TIMED_OUT : ACK;
  }

  // ---- the one shared timer: poll windows and session expiry ----

  #startTimer(): void {
    if (this.#timer) return;
    const tickMs = Math.max(25, Math.min(1000, Math.floor(this.#o.windowMs / 10)));
    this.#timer = setInterval(this.#tick, tickMs);
    this.#timer.unref();
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #tick = (): void => {
    const now = Date.now();
    const expireMs = this.#o.windowMs * EXPIRE_AFTER_WINDOWS;
    for (const lp of this.#sessions.values()) {
      if (lp.waiter) {
        if (now >= lp.deadline) lp.respond(lp.empty());
      } else if (now - lp.lastPoll > expireMs) {
        this.end(lp);
      }
    }
  };
}
