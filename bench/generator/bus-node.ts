// One node of the bus benchmark, in its own process (forked by bench/scenarios/bus.ts, IPC for
// commands): a publisher that offers ~250-byte task events at a fixed rate or as fast as a window
// of unacknowledged messages allows, or a subscriber that timestamps arrivals, checks order and
// reports latency; both report their own CPU (process.cpuUsage) over the measured window.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import type { BusTransport } from '../../src/bus/transport.ts';
import type { CreateTransportOptions } from '../../src/bus/transports/index.ts';
import { Samples } from '../lib/stats.ts';

export interface StartCmd {
  cmd: 'start';
  role: 'publisher' | 'subscriber';
  transport: Omit<CreateTransportOptions, 'log'>;
  channel: string;
  /** A checkout whose src/bus/transports to load (BENCH_TASKWIRE_ROOT), else this one. */
  root?: string;
}

export interface RunCmd {
  cmd: 'run';
  channel: string;
  /** Messages per second; 0 = as fast as `window` allows. */
  rate: number;
  /** Messages published and not yet received by the subscriber, at most (rate 0 only). */
  window: number;
  size: number;
  durationMs: number;
}

export interface WindowResult {
  wallMs: number;
  cpuUs: number;
  /** publisher: published in the window; subscriber: received in the window. */
  messages: number;
  latencyUs?: Float64Array;
}

export interface FinalResult {
  published?: number;
  received?: number;
  lost?: number;
  reordered?: number;
  stats: ReturnType<BusTransport['stats']>;
}

const log = pino({ level: 'warn' }, pino.destination(2));
let transport: BusTransport | undefined;
let role: StartCmd['role'] = 'subscriber';

// Subscriber state.
let received = 0;
let last = -1;
let lost = 0;
let reordered = 0;
let measuring = false;
let samples = new Samples(1 << 16);
// Publisher state.
let published = 0;
let acked = 0;
let resume: (() => void) | undefined;
// The measured window.
let window0 = { at: 0, cpu: process.cpuUsage(), count: 0 };

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const cpuUs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return d.user + d.system;
};

/** A task progress event of about `size` bytes; `i` and `t` (µs, CLOCK_MONOTONIC) come first so the subscriber reads them cheaply. */
function message(i: number, size: number, padding: string): string {
  const head = `{"i":${i},"t":${nowUs()},"topic":"task:0199a3c2-7d41-7c1e-9b2f-4a6e8c0d1f23","event":"progress","class":"latest","payload":{"progress":${(i % 1000) / 1000},"seq":${i},"status":"running"},"pad":"`;
  return `${head}${padding.slice(0, Math.max(0, size - head.length - 2))}"}`;
}

function onDeliver(_channel: string, messages: string[]): void {
  const now = nowUs();
  for (const m of messages) {
    const c1 = m.indexOf(',', 5);
    const i = Number(m.slice(5, c1));
    const c2 = m.indexOf(',', c1 + 5);
    const t = Number(m.slice(c1 + 5, c2));
    if (i === last + 1) last = i;
    else if (i > last + 1) {
      lost += i - last - 1;
      last = i;
    } else reordered++;
    received++;
    if (measuring) samples.push(now - t);
  }
}

async function start(cmd: StartCmd): Promise<{ pid: number }> {
  role = cmd.role;
  const root = cmd.root ?? path.resolve(import.meta.dirname, '../..');
  const mod = (await import(
    pathToFileURL(path.join(root, 'src/bus/transports/index.ts')).href
  )) as typeof import('../../src/bus/transports/index.ts');
  transport = await mod.createTransport({ ...cmd.transport, log });
  const channels = role === 'subscriber' ? [cmd.channel] : [];
  await transport.start(channels, {
    deliver: role === 'subscriber' ? onDeliver : () => {},
    up: () => log.warn('bus up'),
    down: (err) => log.warn({ err }, 'bus down'),
  });
  if (role === 'subscriber') {
    // Progress for the publisher's window (relayed by the runner).
    setInterval(() => process.send?.({ note: 'received', received }), 5).unref();
  }
  return { pid: process.pid };
}

async function run(cmd: RunCmd): Promise<{ published: number }> {
  const t = transport!;
  const padding = 'x'.repeat(cmd.size);
  const t0 = performance.now();
  const end = t0 + cmd.durationMs;
  if (cmd.rate > 0) {
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = performance.now();
        const due = Math.floor(((Math.min(now, end) - t0) * cmd.rate) / 1000);
        // One publish() per event, as the cluster layer would; the transport packs them.
        while (published < due) t.publish(cmd.channel, [message(published++, cmd.size, padding)]);
        if (now >= end) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
  } else {
    while (performance.now() < end) {
      if (published - acked >= cmd.window) {
        await new Promise<void>((r) => {
          resume = r;
        });
        continue;
      }
      const burst = Math.min(1000, cmd.window - (published - acked));
      for (let k = 0; k < burst; k++) t.publish(cmd.channel, [message(published++, cmd.size, padding)]);
      await new Promise((r) => setImmediate(r));
    }
  }
  return { published };
}

function windowStart(): void {
  window0 = {
    at: performance.now(),
    cpu: process.cpuUsage(),
    count: role === 'publisher' ? published : received,
  };
  samples = new Samples(1 << 16);
  measuring = true;
}

function windowStop(): WindowResult {
  measuring = false;
  const count = (role === 'publisher' ? published : received) - window0.count;
  return {
    wallMs: performance.now() - window0.at,
    cpuUs: cpuUs(window0.cpu),
    messages: count,
    latencyUs: role === 'subscriber' ? samples.view().slice() : undefined,
  };
}

type Command =
  | StartCmd
  | RunCmd
  | { cmd: 'window-start' }
  | { cmd: 'window-stop' }
  | { cmd: 'acked'; received: number }
  | { cmd: 'final' }
  | { cmd: 'stop' }
  | { cmd: 'ping' };

async function handle(msg: Command): Promise<unknown> {
  switch (msg.cmd) {
    case 'start':
      return start(msg);
    case 'run':
      return run(msg);
    case 'window-start':
      return windowStart();
    case 'window-stop':
      return windowStop();
    case 'final':
      return {
        published: role === 'publisher' ? published : undefined,
        received: role === 'subscriber' ? received : undefined,
        lost: role === 'subscriber' ? lost : undefined,
        reordered: role === 'subscriber' ? reordered : undefined,
        stats: transport!.stats(),
      } satisfies FinalResult;
    case 'stop':
      await transport?.stop();
      return {};
    case 'ping':
      return { pid: process.pid };
    default:
      throw new Error(`unknown command ${(msg as { cmd: string }).cmd}`);
  }
}

if (!process.send) {
  console.error('bench/generator/bus-node.ts is started by bench/scenarios/bus.ts');
  process.exit(2);
}
const send = process.send.bind(process);
process.on('message', (raw) => {
  const msg = raw as Command & { id?: number };
  if (msg.cmd === 'acked') {
    acked = msg.received;
    const r = resume;
    resume = undefined;
    r?.();
    return;
  }
  handle(msg).then(
    (result) => send({ replyTo: msg.id, result }),
    (err: unknown) => send({ replyTo: msg.id, error: err instanceof Error ? err.stack : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
