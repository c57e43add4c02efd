// The WebSocket transport (Phoenix's transports/websocket.ex) on `ws`: upgrade checks in the spec's
// order, frames in and out, idle timeout, close codes. Must not know topics or channels.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { Identity } from '../../auth/index.ts';
import { negotiateVersion, type Serializer } from '../serializers/serializer.ts';
import { v1 } from '../serializers/v1.ts';
import { v2 } from '../serializers/v2.ts';
import type { Session, Transport } from '../session.ts';
import { lastQueryValue, type SocketEndpoint } from './connect.ts';

export const WEBSOCKET_PATH = '/socket/websocket';
/** phoenix.js `authToken`: `Sec-WebSocket-Protocol: phoenix, base64url.bearer.phx.<b64>`. */
const AUTH_TOKEN_PREFIX = 'base64url.bearer.phx.';
const CLOSE_GOING_AWAY = 1001;
const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_INVALID_PAYLOAD = 1007;
/** A socket still not closed this long after we closed it (a reader that stopped reading) is destroyed. */
const CLOSE_GRACE_MS = 5000;
const SEC_WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** A refused upgrade's status line text and api.md error code (Phoenix sends no body; no client reads one). */
const REFUSAL: Record<number, [text: string, code: string]> = {
  400: ['Bad Request', 'bad_request'],
  403: ['Forbidden', 'forbidden'],
  404: ['Not Found', 'not_found'],
  429: ['Too Many Requests', 'rate_limited'],
  503: ['Service Unavailable', 'unavailable'],
};

export interface WebSocketTransportOptions {
  server: Server;
  endpoint: SocketEndpoint;
  maxFrameBytes: number;
  idleTimeoutMs: number;
}

/** One accepted WebSocket: the Transport its session writes to. */
class WebSocketConnection implements Transport {
  readonly ws: WebSocket;
  readonly serializer: Serializer;
  readonly userId: string;
  session!: Session;
  /** Set by every inbound frame; the shared idle check turns it into `silentSince`. */
  heard = false;
  silentSince: number;
  closingSince = 0;

  constructor(ws: WebSocket, serializer: Serializer, userId: string, now: number) {
    this.ws = ws;
    this.serializer = serializer;
    this.userId = userId;
    this.silentSince = now;
  }

  /** While frames are held for this loop turn: the bytes the client had not taken before it. */
  #backlog = -1;
  /** A frame went out in this loop turn: the next ones of the turn are held and batched. */
  wroteThisTurn = false;

  buffered(): number {
    // Frames held on purpose until the end of this turn are batching, not a slow reader.
    return this.#backlog >= 0 ? this.#backlog : this.ws.bufferedAmount;
  }

  write(frame: string): void {
    // The fan-out loop hands the same event string to every subscriber in turn: frame it once
    // (ws's own Sender.frame: header and payload in one buffer) and write that one buffer to
    // each socket, rather than have ws build a header and a two-buffer writev per subscriber.
    if (frame !== lastText) {
      lastText = frame;
      lastFrame = textFrame(frame);
    }
    // The first frame of a turn leaves at once (no added latency); from the second one on, the
    // socket is held so the rest of the turn's frames share one writev.
    if (this.wroteThisTurn) this.#hold();
    else this.#markWrote();
    const ws = this.ws;
    const socket = rawSocket(ws);
    // Straight to the socket only while ws would have written at once itself (open, its sender
    // idle: no compression or queued frame, which this server never uses); otherwise ws.send.
    if (socket !== undefined && ws.readyState === WebSocket.OPEN && senderIdle(ws)) socket.write(lastFrame);
    else ws.send(lastFrame.subarray(frameHeaderLength(lastFrame)), { binary: false });
    if (this.#backlog >= 0 && ws.bufferedAmount - this.#backlog > HOLD_LIMIT_BYTES) this.release();
  }

  #markWrote(): void {
    this.wroteThisTurn = true;
    turn.push(this);
    if (turn.length === 1) setImmediate(endTurn);
  }

  /**
   * Corks the socket until the end of this loop turn, so the frames it gets in one turn (one
   * per joined task that moved) leave in one writev instead of one syscall each.
   */
  #hold(): void {
    if (this.#backlog >= 0) return;
    const socket = rawSocket(this.ws);
    if (!socket) return;
    this.#backlog = this.ws.bufferedAmount;
    socket.cork();
  }

  /** Hands what is held to the kernel now. */
  release(): void {
    if (this.#backlog < 0) return;
    this.#backlog = -1;
    rawSocket(this.ws)?.uncork();
  }

  close(code: number, reason: string): void {
    if (this.closingSince !== 0) return;
    this.closingSince = Date.now();
    this.ws.close(code, reason);
  }
}

function ignore(): void {}

/** A one-entry cache: the last frame written and its WebSocket frame (header + payload). */
let lastText = '';
let lastFrame: Buffer = Buffer.alloc(0);

/** ws's framing (the types do not declare it): an unmasked server frame's header and payload. */
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender;
const TEXT_FRAME = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false };

function textFrame(text: string): Buffer {
  const parts = Sender.frame(Buffer.from(text), TEXT_FRAME);
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Header bytes of an unmasked frame (2, 4 or 10). */
function frameHeaderLength(frame: Buffer): number {
  const len = frame[1] & 0x7f;
  return len === 126 ? 4 : len === 127 ? 10 : 2;
}

/** ws's sender writes a frame at once only in its default state (0: not deflating, no queue). */
function senderIdle(ws: WebSocket): boolean {
  return (ws as unknown as { _sender?: { _state: number } })._sender?._state === 0;
}

/** Held frames are handed to the kernel early once a turn holds this much for one socket. */
const HOLD_LIMIT_BYTES = 64 * 1024;
/** The connections written to in this loop turn (each once: wroteThisTurn). */
let turn: WebSocketConnection[] = [];

/** ws exposes no public handle for corking; `_socket` is the net.Socket it writes to (ws 8). */
function rawSocket(ws: WebSocket): Duplex | undefined {
  return (ws as unknown as { _socket?: Duplex })._socket;
}

function endTurn(): void {
  const conns = turn;
  turn = [];
  for (const conn of conns) {
    conn.wroteThisTurn = false;
    conn.release();
  }
}

function refuse(socket: Duplex, status: number, reason: string): void {
  if (socket.destroyed) return;
  const [text, code] = REFUSAL[status];
  const body = JSON.stringify({ error: { code, message: reason } });
  socket.once('finish', socket.destroy);
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function protocolToken(offered: string[]): string | undefined {
  const entry = offered.find((p) => p.startsWith(AUTH_TOKEN_PREFIX));
  if (!entry) return undefined;
  const token = Buffer.from(entry.slice(AUTH_TOKEN_PREFIX.length), 'base64').toString('utf8');
  return token || undefined;
}

export class WebSocketTransport {
  readonly #o: WebSocketTransportOptions;
  readonly #wss: WebSocketServer;
  readonly #connections = new Map<WebSocket, WebSocketConnection>();
  readonly #idleTimer: NodeJS.Timeout;
  #closing = false;
  #allClosed: (() => void) | undefined;

  constructor(opts: WebSocketTransportOptions) {
    this.#o = opts;
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: opts.maxFrameBytes,
      handleProtocols: (offered) => (offered.has('phoenix') ? 'phoenix' : false),
    });
    opts.server.on('upgrade', this.#onUpgrade);
    // One timer for every socket's idle check (not one per socket).
    const tickMs = Math.max(100, Math.min(5000, Math.floor(opts.idleTimeoutMs / 4)));
    this.#idleTimer = setInterval(this.#checkIdle, tickMs);
    this.#idleTimer.unref();
  }

  get size(): number {
    return this.#connections.size;
  }

  /** Refuses new sockets (503); open ones carry on until close(). */
  stopAccepting(): void {
    this.#closing = true;
  }

  /** Stops accepting, closes every socket with `code`, resolves when all are gone (bounded). */
  async close(code: number, reason: string, timeoutMs = 2000): Promise<void> {
    this.#closing = true;
    this.#o.server.off('upgrade', this.#onUpgrade);
    for (const conn of this.#connections.values()) conn.session.fail(code, reason);
    if (this.#connections.size > 0) {
      await new Promise<void>((resolve) => {
        this.#allClosed = resolve;
        setTimeout(resolve, timeoutMs).unref();
      });
    }
    for (const conn of this.#connections.values()) conn.ws.terminate();
    clearInterval(this.#idleTimer);
  }

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== WEBSOCKET_PATH) {
      // Nobody else serves upgrades on this server: answer rather than leave the socket hanging.
      if (this.#o.server.listenerCount('upgrade') === 1) refuse(socket, 404, 'no WebSocket endpoint here');
      return;
    }
    socket.on('error', ignore);
    this.#upgrade(req, socket, head, q === -1 ? '' : url.slice(q + 1)).catch((err: unknown) => {
      this.#o.endpoint.log.error({ err }, 'websocket upgrade failed');
      refuse(socket, 403, 'connect refused');
    });
  };

  /** The checks of spec 1.4, in order: 400, origin 403, subprotocol 403, vsn/auth 403, then 101. */
  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, query: string): Promise<void> {
    const { endpoint } = this.#o;
    const h = req.headers;
    if (this.#closing) return this.#refuse(socket, 503, 'shutting down');
    if (
      req.method !== 'GET' ||
      h.upgrade?.toLowerCase() !== 'websocket' ||
      !SEC_WEBSOCKET_KEY.test(h['sec-websocket-key'] ?? '') ||
      h['sec-websocket-version'] !== '13'
    ) {
      return this.#refuse(socket, 400, 'bad upgrade request');
    }
    if (!endpoint.origins.allows(h.origin, h.host)) return this.#refuse(socket, 403, 'origin not allowed');
    const offered = (h['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    if (offered.length > 0 && !offered.includes('phoenix'))
      return this.#refuse(socket, 403, 'no phoenix subprotocol');
    const search = new URLSearchParams(query);
    const version = negotiateVersion(lastQueryValue(search, 'vsn'));
    if (version === undefined) return this.#refuse(socket, 403, 'unsupported vsn');
    const param = lastQueryValue(search, 'token');
    const token = param === undefined ? protocolToken(offered) : (param ?? undefined);
    const principal = await endpoint.authenticate(token);
    if (socket.destroyed) return;
    if (principal === undefined) return this.#refuse(socket, 403, 'invalid token');
    if (this.#closing) return this.#refuse(socket, 503, 'shutting down');
    if (!endpoint.quota.take(principal.userId))
      return this.#refuse(socket, 429, 'too many sockets for this user');
    let opened = false;
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      opened = true;
      this.#open(ws, principal, version === 1 ? v1 : v2);
    });
    if (!opened) endpoint.quota.give(principal.userId); // ws destroyed a socket that was no longer usable
  }

  #refuse(socket: Duplex, status: number, reason: string): void {
    this.#o.endpoint.refusals.refused('websocket', status, reason);
    refuse(socket, status, reason);
  }

  #open(ws: WebSocket, principal: Identity, serializer: Serializer): void {
    const conn = new WebSocketConnection(ws, serializer, principal.userId, Date.now());
    conn.session = this.#o.endpoint.openSession(principal, conn);
    this.#connections.set(ws, conn);
    ws.on('message', this.#onMessage);
    ws.on('ping', this.#onPing);
    ws.on('error', this.#onError);
    ws.on('close', this.#onClose);
  }

  // Listeners shared by every socket (`this` is the socket): no closures per connection.
  readonly #onMessage = (() => {
    const connections = this.#connections;
    return function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
      const conn = connections.get(this);
      if (!conn) return;
      conn.heard = true;
      const session = conn.session;
      if (isBinary) {
        const msg = conn.serializer.decodeBinary(data as Buffer);
        if (msg === 'unsupported') session.fail(CLOSE_UNSUPPORTED_DATA, 'unsupported binary frame');
        else if (msg === undefined) session.fail(CLOSE_INVALID_PAYLOAD, 'malformed binary frame');
        else session.receive(msg);
        return;
      }
      const msg = conn.serializer.decode((data as Buffer).toString('utf8'));
      if (msg === undefined) session.fail(CLOSE_INVALID_PAYLOAD, 'malformed message');
      else session.receive(msg);
    };
  })();

  readonly #onPing = (() => {
    const connections = this.#connections;
    return function onPing(this: WebSocket): void {
      const conn = connections.get(this);
      if (conn) conn.heard = true;
    };
  })();

  readonly #onError = (() => {
    const self = this;
    return function onError(this: WebSocket, err: Error): void {
      // ws closes the socket itself (1009 too large, 1007 invalid UTF-8, 1002 protocol error).
      self.#o.endpoint.log.debug({ err }, 'websocket error');
    };
  })();

  readonly #onClose = (() => {
    const self = this;
    return function onClose(this: WebSocket): void {
      const conn = self.#connections.get(this);
      if (!conn) return;
      self.#connections.delete(this);
      conn.session.end();
      self.#o.endpoint.quota.give(conn.userId);
      if (self.#connections.size === 0) self.#allClosed?.();
    };
  })();

  readonly #checkIdle = (): void => {
    const now = Date.now();
    const idleMs = this.#o.idleTimeoutMs;
    for (const conn of this.#connections.values()) {
      if (conn.closingSince !== 0) {
        if (now - conn.closingSince > CLOSE_GRACE_MS) conn.ws.terminate();
      } else if (conn.heard) {
        conn.heard = false;
        conn.silentSince = now;
      } else if (now - conn.silentSince >= idleMs) {
        conn.session.fail(CLOSE_GOING_AWAY, 'idle timeout');
      }
    }
  };
}
