// Real server processes for crash tests: `taskwire start` as a child process on a shared test
// database, which a test can kill -9, SIGSTOP, SIGCONT or SIGTERM. Each binds port 0 and the
// test learns its URL from the line `taskwire is listening on <url>` it prints.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { Tokens } from '../../src/auth/index.ts';
import { TEST_SECRET } from './server.ts';

const BIN = path.join(import.meta.dirname, '../../bin/taskwire.js');
/** What `taskwire start` prints once it listens (the banner's first line). */
const LISTENING = /taskwire is listening on (http:\/\/\S+)/;

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  port: number;
  nodeId: string;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

export async function spawnServer(opts: {
  databaseUrl: string;
  nodeId: string;
  env?: Record<string, string>;
  /** The node binary that runs bin/taskwire.js (default: this test's). */
  node?: string;
  /** Lead a process group of its own (so that a test can signal the whole group). */
  detached?: boolean;
  /** The `taskwire` script to run (default this checkout's bin/taskwire.js), from `cwd`. */
  bin?: string;
  cwd?: string;
  /** Flags for node before the script (`--import …`). */
  nodeArgs?: string[];
  /** Open an IPC channel to the server, as `fork` does. */
  ipc?: boolean;
}): Promise<ServerProcess> {
  let out = '';
  const child = spawn(opts.node ?? process.execPath, [...(opts.nodeArgs ?? []), opts.bin ?? BIN, 'start'], {
    cwd: opts.cwd,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      DATABASE_URL: opts.databaseUrl,
      TASKWIRE_SECRET: TEST_SECRET,
      TASKWIRE_NODE_ID: opts.nodeId,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      TASKWIRE_LOG_PRETTY: 'false',
      TASKWIRE_POLL_INTERVAL_MS: '200',
      ...opts.env,
    },
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server ${opts.nodeId} did not print its URL in 30 s:\n${out}`));
    }, 30_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = LISTENING.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d) => {
      out += d;
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server ${opts.nodeId} exited (${code}) at start:\n${out}`));
    });
  });
  // It prints the line once it listens, with its workers already running: it is ready.
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`server ${opts.nodeId} printed ${url} but /readyz is ${res.status}:\n${out}`);
  return {
    child,
    url,
    port: Number(new URL(url).port),
    nodeId: opts.nodeId,
    output: () => out,
    exited,
    kill: (signal) => child.kill(signal),
  };
}

/**
 * A Node older than 22.18 on this machine (its own, not the one npm installed), which makes
 * bin/taskwire.js run itself again on Node 24; undefined when there is none.
 */
export function olderNode(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d && !d.includes('node_modules'));
  for (const candidate of [
    ...dirs.map((d) => path.join(d, 'node')),
    '/usr/bin/node',
    '/usr/local/bin/node',
  ]) {
    try {
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim();
      const [major, minor] = version.slice(1).split('.').map(Number);
      if (major < 22 || (major === 22 && minor < 18)) return candidate;
    } catch {
      // not there, or not runnable
    }
  }
  return undefined;
}

export function testToken(user: string): Promise<string> {
  return new Tokens(TEST_SECRET).mint(user, 3600);
}

export async function post(url: string, token: string, path: string, body: unknown): Promise<any> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() };
}
