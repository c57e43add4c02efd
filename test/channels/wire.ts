// Raw-frame test clients for the channels tests: a WebSocket that queues what it receives (every
// wait bounded), an upgrade probe that reports the HTTP answer, and small await helpers.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import { WebSocket } from 'ws';

export type Frame = any;

export interface Received {
  data: string | Buffer;
  binary: boolean;
  at: number;
}

let barriers = 0;

/** A raw WebSocket client: frames in arrival order, closes observable. */
export class Wire {
  readonly ws: WebSocket;
  /** The TCP socket under the WebSocket (pause() it to play a slow reader). */
  tcp: NetSocket | undefined;
  readonly received: Received[] = [];
  #read = 0;
  #waiters: Array<() => void> = [];
  closeInfo: { code: number; reason: string } | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('upgrade', (res) => {
      this.tcp = res.socket as NetSocket;
    });
    ws.on('message', (data, binary) => {
      this.received.push({
        data: binary ? (data as Buffer) : (data as Buffer).toString('utf8'),
        binary,
        at: Date.now(),
      });
      this.#wake();
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.#wake();
        resolve(this.closeInfo);
      });
    });
  }

  static open(
    url: string,
    opts: { headers?: Record<string, string>; protocols?: string[]; maxPayload?: number } = {},
  ): Promise<Wire> {
    const ws = new WebSocket(url, opts.protocols ?? [], {
      headers: opts.headers,
      perMessageDeflate: false,
      maxPayload: opts.maxPayload ?? 256 * 1024 * 1024,
    });
    const wire = new Wire(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no open within 5 s: ${url}`)), 5000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(wire);
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`upgrade refused: ${res.statusCode}`));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  sendBinary(data: Buffer): void {
    this.ws.send(data, { binary: true });
  }

  /** The next frame received, parsed; throws on timeout, on a binary frame, or if the socket closed. */
  async next(timeoutMs = 3000): Promise<Frame> {
    const r = await this.nextRaw(timeoutMs);
    if (r.binary) throw new Error('the server sent a binary frame');
    return JSON.parse(r.data as string);
  }

  async nextRaw(timeoutMs = 3000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.#read >= this.received.length) {
      if (this.closeInfo) throw new Error(`socket closed (${this.closeInfo.code}) while waiting for a frame`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received[this.#read++];
  }

  /** Skips frames until one matches (returns it); bounded. */
  async until(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.next(Math.max(1, deadline - Date.now()));
      if (pred(f)) return f;
    }
  }

  /**
   * Asserts that the server sent nothing for what was sent before (the spec's "no frame"): a leave
   * of a topic never joined is answered in order after every earlier message of the socket, so
   * its reply must be the next frame. No waiting window: the reply is an event to await. (V2.)
   */
  async nothingBefore(timeoutMs = 3000): Promise<void> {
    const ref = `barrier-${++barriers}`;
    this.send([null, ref, 'barrier:none', 'phx_leave', {}]);
    const f = await this.next(timeoutMs);
    if (!(Array.isArray(f) && f[1] === ref && f[3] === 'phx_reply')) {
      throw new Error(`unexpected frame: ${JSON.stringify(f).slice(0, 300)}`);
    }
  }

  /** Sends and awaits the reply with this ref. */
  async call(frame: unknown[], timeoutMs = 3000): Promise<Frame> {
    this.send(frame);
    const ref = frame[1];
    return this.until((f) => Array.isArray(f) && f[1] === ref && f[3] === 'phx_reply', timeoutMs);
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    return within(this.closed, timeoutMs, 'socket close');
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.terminate();
  }
}

/** Rejects when `p` has not settled within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]);
}

/** Polls `check` until it returns truthy (bounded). */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A promise with its resolve, for callbacks (phoenix.js) turned into awaits. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export interface UpgradeAnswer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * Sends a WebSocket upgrade request (or any request to the path) and reports the HTTP answer:
 * 101 when the server switched protocols, else its status and body.
 */
export function probe(
  baseUrl: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; upgrade?: boolean } = {},
): Promise<UpgradeAnswer> {
  const upgradeHeaders =
    opts.upgrade === false
      ? {}
      : {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': randomBytes(16).toString('base64'),
        };
  return within(
    new Promise((resolve, reject) => {
      const req = http.request(`${baseUrl}${path}`, {
        method: opts.method ?? 'GET',
        headers: { ...upgradeHeaders, ...opts.headers },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers });
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      });
      req.on('error', reject);
      req.end();
    }),
    5000,
    `answer to ${opts.method ?? 'GET'} ${path}`,
  );
}

/** A V2 binary push (kind 0): kind, lengths, then join_ref, ref, topic, event, payload. */
export function binaryPush(
  joinRef: string,
  ref: string,
  topic: string,
  event: string,
  payload: Buffer,
  kind = 0,
): Buffer {
  const parts = [joinRef, ref, topic, event].map((s) => Buffer.from(s, 'utf8'));
  return Buffer.concat([Buffer.from([kind, ...parts.map((p) => p.length)]), ...parts, payload]);
}
