// Private message-engine processes (nats-server, redis-server) for the bus benchmark and the bus
// outage tests: their own port or unix socket and temporary directory, so that they can be measured
// (/proc/<pid>), killed and started again at the same address without touching the shared services.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
export const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

export interface EngineProcess {
  /** What a transport connects to: nats://127.0.0.1:<port>, redis://127.0.0.1:<port> or a unix socket path. */
  url: string;
  pid(): number;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
  /** Starts it again at the same address. */
  restart(): Promise<void>;
  /** Kills it (if running) and removes its files. */
  dispose(): Promise<void>;
}

/** Engine processes still running: killed if this process exits or is interrupted first. */
const live = new Set<ChildProcess>();
let guarded = false;

function guard(): void {
  if (guarded) return;
  guarded = true;
  const killAll = () => {
    for (const c of live) c.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      killAll();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
}

/** Spawns `cmd` and resolves once a line of its output matches `ready` (rejects on exit or after 15 s). */
function launch(
  cmd: string,
  args: string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    guard();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} not ready in 15 s:\n${out}`));
    }, 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const match = ready.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stderr!.off('data', onData);
      // Keep reading so the pipes never fill.
      child.stdout!.resume();
      child.stderr!.resume();
      resolve({ child, match });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before it was ready:\n${out}`));
    });
  });
}

function killed(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** A private nats-server; `config` is written to a file and passed with -c (e.g. `max_payload: 4096`). */
export async function startNatsServer(config?: string): Promise<EngineProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'taskwire-nats-'));
  const extra: string[] = [];
  if (config) {
    const file = path.join(dir, 'nats.conf');
    writeFileSync(file, config);
    extra.push('-c', file);
  }
  const listening = /Listening for client connections on 127\.0\.0\.1:(\d+)/;
  let { child, match } = await launch(NATS_SERVER, [...extra, '-a', '127.0.0.1', '-p', '-1'], listening);
  const port = Number(match[1]);
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: () => child.pid!,
    kill: () => killed(child),
    async restart() {
      await killed(child);
      ({ child } = await launch(NATS_SERVER, [...extra, '-a', '127.0.0.1', '-p', String(port)], listening));
    },
    async dispose() {
      await killed(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A private redis-server without persistence, on a unix socket (default) or on a TCP port of 127.0.0.1. */
export async function startRedisServer(opts: { tcp?: boolean } = {}): Promise<EngineProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'taskwire-redis-'));
  const socket = path.join(dir, 'r.sock');
  const common = ['--save', '', '--appendonly', 'no', '--dir', dir];
  const ready = /ready to accept connections/i;
  // redis-server cannot pick a free TCP port itself: take one the kernel just gave out, and try
  // another if something else took it meanwhile.
  let args: string[] = [];
  let started: { child: ChildProcess } | undefined;
  for (let attempt = 0; !started; attempt++) {
    args = opts.tcp
      ? ['--port', String(await kernelPort()), '--bind', '127.0.0.1', ...common]
      : ['--port', '0', '--unixsocket', socket, ...common];
    try {
      started = await launch(REDIS_SERVER, args, ready);
    } catch (err) {
      if (!opts.tcp || attempt >= 4 || !/in use/i.test(String(err))) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  let { child } = started;
  const port = opts.tcp ? args[1] : undefined;
  return {
    url: port ? `redis://127.0.0.1:${port}` : socket,
    pid: () => child.pid!,
    kill: () => killed(child),
    async restart() {
      await killed(child);
      ({ child } = await launch(REDIS_SERVER, args, ready));
    },
    async dispose() {
      await killed(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP port of 127.0.0.1 that was free a moment ago. */
function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
