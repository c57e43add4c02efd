// Starts a real taskwire server for a test: its own database, port 0, quiet logs, fast timers.

import type { Logger } from 'pino';
import type { BusTransport } from '../../src/bus/index.ts';
import type { Config } from '../../src/config/index.ts';
import { startServer, type TaskwireServer } from '../../src/server/index.ts';
import type { TaskType } from '../../src/tasks/index.ts';
import { createTestDatabase, type Database } from './db.ts';

export const TEST_SECRET = 'test-secret-0123456789abcdef';

export interface TestServer {
  server: TaskwireServer;
  db: Database;
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT/socket */
  wsUrl: string;
  token(user: string): Promise<string>;
  /** fetch with a bearer token; JSON body in, parsed JSON out. */
  api(
    token: string,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any; headers: Headers }>;
  createTask(token: string, body?: Record<string, unknown>): Promise<any>;
  /** Polls GET until the task's status is one of `statuses` (bounded). */
  waitForStatus(token: string, id: string, statuses: string[], timeoutMs?: number): Promise<any>;
  service: TaskwireServer['service'];
  stop(): Promise<void>;
}

export interface TestServerOptions {
  config?: Partial<Config>;
  /** Where the server logs (default: pino at TEST_LOG_LEVEL, silent). */
  log?: Logger;
  tasks?: TaskType[];
  /** Reuse a database (e.g. a second process on the same one). */
  db?: Database;
  /** A bus transport (e.g. a MemoryTransport on a broker shared by in-process nodes). */
  busTransport?: BusTransport;
  /** The built dashboard to serve (default: the package's dist/dashboard). */
  dashboardDir?: string;
}

export async function startTestServer(opts: TestServerOptions | Partial<Config> = {}): Promise<TestServer> {
  const o: TestServerOptions =
    'config' in opts ||
    'tasks' in opts ||
    'db' in opts ||
    'busTransport' in opts ||
    'log' in opts ||
    'dashboardDir' in opts
      ? (opts as TestServerOptions)
      : { config: opts as Partial<Config> };
  const db = o.db ?? (await createTestDatabase());
  let server: TaskwireServer;
  try {
    server = await startServer({
      env: {},
      tasks: o.tasks,
      busTransport: o.busTransport,
      log: o.log,
      dashboardDir: o.dashboardDir,
      config: {
        port: 0,
        host: '127.0.0.1',
        databaseUrl: db.url,
        secret: TEST_SECRET,
        logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
        pollIntervalMs: 100,
        snapshotIntervalMs: 100,
        retryBaseMs: 50,
        retryMaxMs: 1000,
        shutdownTimeoutMs: 2000,
        dbPoolSize: 5,
        // A test process holds many servers and much else: no memory-reducing GC pauses in it
        // (test/robustness/memory-storm.test.ts runs a real process with the default).
        heapReleaseBytes: 0,
        ...o.config,
      },
    });
  } catch (err) {
    if (!o.db) await db.drop();
    throw err;
  }
  const url = server.url;
  const api: TestServer['api'] = async (token, method, path, body, headers = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    server,
    db,
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/socket`,
    token: (user) => server.tokens.mint(user, 3600),
    api,
    async createTask(token, body = { steps: 1, interval_ms: 0 }) {
      const res = await api(token, 'POST', '/api/tasks', body);
      if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async waitForStatus(token, id, statuses, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < deadline) {
        last = (await api(token, 'GET', `/api/tasks/${id}`)).body;
        if (statuses.includes(last?.status)) return last;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(
        `task ${id} did not reach ${statuses.join('/')} in ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
      );
    },
    service: server.service,
    async stop() {
      await server.stop();
      if (!o.db) await db.drop();
    },
  };
}
