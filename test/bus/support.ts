// What the bus transport tests share: a recording set of handlers with event-driven waits, a
// logger whose lines a test can read, and messages of exact UTF-8 sizes.
import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import type { BusTransport, TransportHandlers } from '../../src/bus/transport.ts';
import { type LogSink, logSink } from '../helpers/log-sink.ts';

export interface Recorder {
  handlers: TransportHandlers;
  /** Messages delivered, per channel, in arrival order. */
  got: Map<string, string[]>;
  /** Each deliver() call's size, per channel. */
  calls: number;
  downs: Error[];
  ups: number;
  on(channel: string): string[];
  /** Resolves once `check` holds (checked after each handler call), or rejects after `timeoutMs`. */
  until(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

export function recorder(): Recorder {
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const w of [...waiters]) w();
  };
  const r: Recorder = {
    got: new Map(),
    calls: 0,
    downs: [],
    ups: 0,
    on(channel) {
      let list = r.got.get(channel);
      if (!list) {
        list = [];
        r.got.set(channel, list);
      }
      return list;
    },
    handlers: {
      deliver(channel, messages) {
        r.calls++;
        const list = r.on(channel);
        for (const m of messages) list.push(m);
        poke();
      },
      up() {
        r.ups++;
        poke();
      },
      down(err) {
        r.downs.push(err);
        poke();
      },
    },
    until(check, what, timeoutMs = 20_000) {
      if (check()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        const waiter = () => {
          if (!check()) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          resolve();
        };
        waiters.add(waiter);
      });
    },
  };
  return r;
}

export function testLogger(): { log: Logger; sink: LogSink } {
  const sink = logSink();
  return { log: pino({ level: 'debug' }, sink.stream), sink };
}

/** A JSON text of exactly `bytes` UTF-8 bytes, mixing 1- to 4-byte characters. */
export function jsonOfBytes(bytes: number, seed = 0): string {
  const head = `{"n":${seed},"s":"`;
  const tail = '"}';
  const chars = ['a', 'é', '€', '😀'];
  let body = '';
  let size = Buffer.byteLength(head) + Buffer.byteLength(tail);
  let i = seed;
  while (size < bytes) {
    let c = chars[i++ % chars.length];
    let len = Buffer.byteLength(c);
    if (size + len > bytes) {
      c = 'a';
      len = 1;
    }
    body += c;
    size += len;
  }
  const text = head + body + tail;
  if (Buffer.byteLength(text) !== bytes) throw new Error('jsonOfBytes: wrong size');
  return text;
}

/** A node id like the cluster layer's, with characters engines' naming rules dislike. */
export function nodeChannel(name: string): string {
  return `node.host-1:4000:${name}`;
}

export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A TCP server that accepts connections and never says a word: an engine that hangs. */
export async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Asserts that starting `transport` against a silent server fails within about `timeoutMs`. */
export async function assertStartTimesOut(
  transport: BusTransport,
  timeoutMs: number,
  message: RegExp,
): Promise<void> {
  const started = Date.now();
  await assert.rejects(transport.start(['all'], { deliver() {}, up() {}, down() {} }), message);
  const took = Date.now() - started;
  assert.ok(took >= timeoutMs * 0.8 && took < timeoutMs + 3000, `gave up after ${took} ms`);
  assert.equal(transport.connected, false);
  await transport.stop();
}
