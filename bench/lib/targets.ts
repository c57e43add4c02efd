// The servers under test, each in its own child process so that its RSS and CPU can be read
// from /proc: taskwire (`node bin/taskwire.js start` on a fresh database) and the Socket.IO +
// BullMQ peer, on PostgreSQL (a fresh database) or on the machine's Redis. All get the probe
// preloaded (memory after GC over IPC). (The graphile-worker ceiling is no server: see
// bench/peers/graphile-ceiling.)
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { get as httpGet } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { transformSync } from 'esbuild';
import pg from 'pg';
import type { Mode } from '../generator/conns.ts';
import { BENCH_SECRET, mintToken } from './auth.ts';
import { HttpClient } from './http.ts';
import { type BenchDatabase, createDatabase } from './pg.ts';
import { type Child, nofileHardLimit, rssParts, spawnNode, treeRssBytes, waitFor } from './procs.ts';

/**
 * What a run can measure. `peer` is the default peer variant, BullMQ on Redis (the peer of the
 * earlier results); `bullmq-postgres` and `bullmq-redis` name the backend; `graphile-ceiling` is
 * bare graphile-worker (throughput only).
 */
export type TargetName = 'taskwire' | 'peer' | 'bullmq-postgres' | 'bullmq-redis' | 'graphile-ceiling';
export const TARGET_NAMES: readonly TargetName[] = [
  'taskwire',
  'peer',
  'bullmq-postgres',
  'bullmq-redis',
  'graphile-ceiling',
];
/** The BullMQ backend of a peer target. */
export function peerBackend(name: TargetName): 'postgres' | 'redis' | undefined {
  return name === 'bullmq-postgres'
    ? 'postgres'
    : name === 'peer' || name === 'bullmq-redis'
      ? 'redis'
      : undefined;
}

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const BENCH_DIR = path.join(ROOT, 'bench');
/** Logs, profiles and JSON of runs (BENCH_RESULTS_DIR to put them elsewhere, e.g. the smoke test). */
export const RESULTS_DIR = process.env.BENCH_RESULTS_DIR
  ? path.resolve(process.env.BENCH_RESULTS_DIR)
  : path.join(BENCH_DIR, 'results');
/**
 * The probe as JavaScript, transpiled once into the temp directory: preloading the .ts file would
 * make Node load its type stripper (14-16 MB of WebAssembly) into a server that otherwise has none
 * (the build, `--from dist`), and the memory figures would count the probe's cost as the server's.
 */
const PROBE = (() => {
  const source = readFileSync(path.join(BENCH_DIR, 'lib/probe.ts'), 'utf8');
  const hash = createHash('sha1').update(source).digest('hex').slice(0, 12);
  const file = path.join(tmpdir(), `taskwire-bench-probe-${hash}.mjs`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, transformSync(source, { loader: 'ts', format: 'esm', target: 'node22' }).code);
    renameSync(tmp, file);
  }
  return file;
})();
/** The taskwire checkout to run (experiments: BENCH_TASKWIRE_ROOT=/path/to/a/worktree). */
const TASKWIRE_ROOT = process.env.BENCH_TASKWIRE_ROOT ? path.resolve(process.env.BENCH_TASKWIRE_ROOT) : ROOT;
/**
 * The script started in that checkout (BENCH_TASKWIRE_ENTRY, relative to it): `bin/taskwire.js`, which
 * runs a checkout's fresh build or else its TypeScript sources, or e.g. `dist/bundle/main.js`, the
 * build. Alternatives separated by `|` name the first that exists there (a tree from before the
 * server was bundled has `dist/cli/main.js` only).
 */
function taskwireEntry(root: string): string {
  const choices = (process.env.BENCH_TASKWIRE_ENTRY || 'bin/taskwire.js').split('|');
  return choices.find((entry) => existsSync(path.join(root, entry))) ?? (choices[0] as string);
}
/** Extra node flags for the server under test (BENCH_SERVER_NODE_ARGS, space-separated). */
const SERVER_NODE_ARGS = () => (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** The bench task module of the checkout under test (so it imports that checkout's defineTask). */
function benchTasks(root: string): string {
  return existsSync(path.join(root, 'bench/lib/bench-tasks.ts'))
    ? path.join(root, 'bench/lib/bench-tasks.ts')
    : path.join(BENCH_DIR, 'lib/bench-tasks.ts');
}
const PEER = path.join(BENCH_DIR, 'peers/socketio-bullmq/server.ts');
const CEILING = path.join(BENCH_DIR, 'peers/graphile-ceiling/main.ts');

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface Probe {
  /** VmRSS of /proc/<pid>/status, read by the benchmark. */
  rss: number;
  /** Its parts: anonymous memory (heaps, stacks) and file-backed pages (the node binary, libraries). */
  rssAnon: number;
  rssFile: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** ArrayBuffers and Buffers (part of external), when the server could say. */
  arrayBuffers?: number;
  /** V8's own malloc'd memory (compiler zones and the like). */
  malloced?: number;
  /** Event-loop utilisation since the previous probe (0..1). */
  elu: number;
  /** GC pauses since the previous probe (a full GC the probe itself ran counts too). */
  gc?: { count: number; ms: number; maxMs: number; major: number; majorMs: number };
  /** Event-loop delay since the previous probe, ms (10 ms sampling timer). */
  loopDelay?: { p50: number; p99: number; max: number };
}

/** Counters the target reports about itself (taskwire: /metrics; peer: /bench/stats). */
export interface TargetStats {
  sockets: number;
  channels?: number;
  actors?: number;
  conflated?: number;
  eventsOut?: number;
  snapshotRows?: number;
  progressIn?: number;
  attemptsCompleted?: number;
  active?: number;
  completed?: number;
  /** Peer: completions its BullMQ worker saw, and those its QueueEvents delivered to rooms. */
  workerCompleted?: number;
  relayedCompleted?: number;
}

/** Rows inserted + updated + deleted so far in taskwire's own tables and in the queue's. */
export interface DbWrites {
  commits: number;
  taskwire: number;
  queue: number;
  /** Rows inserted into taskwire.task_output (streamed output segments). */
  outputRows: number;
}

export interface RunningTarget {
  readonly name: TargetName;
  readonly mode: Mode;
  readonly httpUrl: string;
  /** Where the generator connects: ws://... for Phoenix, http://... for Socket.IO. */
  readonly socketUrl: string;
  readonly child: Child;
  /** Processes whose CPU is the target's backing store (postgres, redis-server). */
  readonly storeComm: string;
  readonly http: HttpClient;
  /** The run's database, for PostgreSQL targets. */
  readonly dbName?: string;
  /** taskwire: the script started, relative to its checkout (see BENCH_TASKWIRE_ENTRY). */
  readonly entry?: string;
  token(user: string): Promise<string>;
  probe(gc?: boolean): Promise<Probe>;
  stats(): Promise<TargetStats>;
  /** Row writes of the target's database so far (PostgreSQL targets only). */
  dbWrites(): Promise<DbWrites | undefined>;
  /**
   * Pickup of first attempts, from the task rows (taskwire only): created (the create's
   * transaction) to started (the claim's), so the claim's own statement is inside it. Only tasks
   * created at or after `sinceMs` (ms since the epoch) count: the measured phase, not the warm-up.
   */
  pickupMs(sinceMs: number): Promise<{ p50: number; p99: number; max: number; count: number } | undefined>;
  /** Starts V8's sampling CPU profiler inside the server (the measured window only). */
  profileStart(): Promise<void>;
  /** Stops it and writes the .cpuprofile; returns its path. */
  profileStop(label: string): Promise<string>;
  /** Stops the server (SIGTERM) and cleans up; returns the whole-process --cpu-prof profile, if any. */
  stop(): Promise<string | undefined>;
  /**
   * Some counters of /metrics, per server process: the port is shared by `--processes N` workers,
   * so it asks on fresh connections until it has heard from each (told apart by their start
   * time) or gives up after `tries`. Sums of every line of each named metric.
   */
  metricsPerProcess(names: string[], tries?: number): Promise<Array<Record<string, number>>>;
}

export interface StartOptions {
  /** Extra environment (KEY=VALUE) for the server, over the benchmark's defaults. */
  env?: Record<string, string>;
  /** Run the server with `node --cpu-prof` (whole process, written at exit). */
  cpuProf?: boolean;
  /** Wanted open-files limit of the server. */
  nofile?: number;
  log: (line: string) => void;
  runId: string;
  /** The taskwire checkout to run (default BENCH_TASKWIRE_ROOT, else this one): `--variant`. */
  root?: string;
  /** A database another target made (several nodes on one database); not dropped by this one. */
  database?: BenchDatabase;
  /** Distinguishes this node's log file and node id when several run (e.g. `a`, `b`). */
  label?: string;
}

function cleanEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('TASKWIRE_') || k.startsWith('PEER_') || k === 'DATABASE_URL' || k === 'PORT') continue;
    if (k.startsWith('npm_') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return env;
}

function newestProfile(dir: string, since: number): string | undefined {
  try {
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => path.join(dir, f))
      .filter((f) => statSync(f).mtimeMs >= since)
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    return files[0];
  } catch {
    return undefined;
  }
}

function metric(text: string, name: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) total = (total ?? 0) + v;
  }
  return total;
}

function nodeArgs(profile: boolean, profileDir: string): string[] {
  const args = [...SERVER_NODE_ARGS(), '--expose-gc', '--import', PROBE];
  if (profile) args.push('--cpu-prof', '--cpu-prof-dir', profileDir);
  return args;
}

/** Memory after a full GC (when `gc`), with the RSS read from /proc. */
async function probeOf(child: Child, gc: boolean): Promise<Probe> {
  const inside = await child.request<Omit<Probe, 'rss' | 'rssAnon' | 'rssFile'>>(
    { cmd: 'probe', gc },
    60_000,
  );
  // With `--processes N` the workers are the primary's children: their memory counts too (the
  // anonymous / file-backed split is the first process's).
  return { ...inside, rss: treeRssBytes(child.pid), ...rssParts(child.pid) };
}

function profiler(child: Child, dir: string, runId: string, name: TargetName) {
  return {
    async profileStart() {
      await child.request({ cmd: 'profile-start', intervalUs: 500 }, 30_000);
    },
    async profileStop(label: string) {
      const file = path.join(dir, `${runId}-${name}-${label}.cpuprofile`);
      await child.request({ cmd: 'profile-stop', file }, 60_000);
      return file;
    },
  };
}

/** The URL a server printed once it listened on the port it bound (port 0: no bind race). */
async function listeningUrl(child: Child, pattern: RegExp): Promise<string> {
  return (await child.line(pattern, 60_000))[1];
}

async function ready(child: Child, url: string, what: string): Promise<void> {
  const client = new HttpClient(url);
  try {
    await waitFor(
      `${what} to answer /readyz`,
      async () => {
        if (child.proc.exitCode !== null) throw new Error(`${what} exited: ${child.tail(15)}`);
        const res = await client.request('GET', '/readyz');
        return res.status === 200 ? true : undefined;
      },
      60_000,
      100,
    );
  } catch (err) {
    await child.stop(2000);
    throw new Error(`${(err as Error).message}\n--- last lines of ${child.logFile}:\n${child.tail(20)}`);
  }
}

/** Scrapes /metrics on fresh connections (no keep-alive: each may land on another worker). */
async function metricsPerProcess(
  httpUrl: string,
  names: string[],
  tries = 16,
): Promise<Array<Record<string, number>>> {
  const seen = new Map<string, Record<string, number>>();
  const u = new URL(httpUrl);
  for (let i = 0; i < tries; i++) {
    const text = await new Promise<string>((resolve, reject) => {
      const req = httpGet({ host: u.hostname, port: u.port, path: '/metrics', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    const key = String(metric(text, 'taskwire_process_start_time_seconds') ?? i);
    if (seen.has(key)) continue;
    const row: Record<string, number> = {};
    for (const name of names) row[name] = metric(text, name) ?? 0;
    seen.set(key, row);
  }
  return [...seen.values()];
}

/**
 * Commits of the run's database and row writes per schema so far, from PostgreSQL's statistics:
 * `own` is the application's schema (taskwire's; none for the BullMQ peer), `queue` the queue's.
 */
export function dbWritesOf(pool: pg.Pool, own: string | undefined, queue: string) {
  return async (): Promise<DbWrites> => {
    const commits = await pool.query(
      'select xact_commit from pg_stat_database where datname = current_database()',
    );
    const tables = await pool.query(
      `select schemaname, sum(n_tup_ins + n_tup_upd + n_tup_del)::bigint as writes
         from pg_stat_user_tables group by schemaname`,
    );
    const by = (schema: string | undefined) =>
      Number(tables.rows.find((r) => r.schemaname === schema)?.writes ?? 0);
    const output =
      own === 'taskwire'
        ? await pool.query(
            "select coalesce(sum(n_tup_ins), 0)::bigint as n from pg_stat_user_tables where schemaname = 'taskwire' and relname = 'task_output'",
          )
        : undefined;
    return {
      commits: Number(commits.rows[0].xact_commit),
      taskwire: by(own),
      queue: by(queue),
      outputRows: Number(output?.rows[0].n ?? 0),
    };
  };
}

export async function startTaskwire(opts: StartOptions): Promise<RunningTarget> {
  const ownDb = !opts.database;
  const db: BenchDatabase = opts.database ?? (await createDatabase());
  mkdirSync(path.join(RESULTS_DIR, 'logs'), { recursive: true });
  const profileDir = path.join(RESULTS_DIR, 'profiles');
  mkdirSync(profileDir, { recursive: true });
  const logFile = path.join(
    RESULTS_DIR,
    'logs',
    `${opts.runId}-taskwire${opts.label ? `-${opts.label}` : ''}.log`,
  );
  const startedAt = Date.now();
  const root = opts.root ? path.resolve(opts.root) : TASKWIRE_ROOT;
  const env = {
    ...cleanEnv(),
    DATABASE_URL: db.url,
    TASKWIRE_SECRET: BENCH_SECRET,
    PORT: '0', // it binds a port of its own and prints it
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    TASKWIRE_LOG_PRETTY: 'false',
    TASKWIRE_NODE_ID: `bench-${opts.runId}${opts.label ? `-${opts.label}` : ''}`,
    TASKWIRE_TASKS: benchTasks(root),
    TASKWIRE_MAX_SOCKETS_PER_USER: '1000000',
    TASKWIRE_MAX_CREATES_PER_MINUTE: '100000000',
    TASKWIRE_MAX_CHANNELS: '1000',
    TASKWIRE_MAX_MESSAGES_PER_SECOND: '100000',
    TASKWIRE_SHUTDOWN_TIMEOUT_MS: '1000',
    // What `taskwire start` sets for itself (src/cli/malloc-arenas.ts), except in a process with an
    // IPC channel, as this one is (the probe): so the bench sets it. A variant can override it.
    MALLOC_ARENA_MAX: '2',
    ...opts.env,
  };
  let child: Child;
  let httpUrl: string;
  let entry: string;
  try {
    entry = taskwireEntry(root);
    child = spawnNode(path.join(root, entry), ['start'], {
      env,
      nodeArgs: nodeArgs(Boolean(opts.cpuProf), profileDir),
      nofile: opts.nofile ?? nofileHardLimit(),
      logFile,
      cwd: root,
    });
    httpUrl = await listeningUrl(child, /taskwire is listening on (http:\/\/\S+)/);
    await ready(child, httpUrl, 'taskwire');
  } catch (err) {
    if (ownDb) await db.drop().catch(() => {});
    throw err;
  }
  const port = Number(new URL(httpUrl).port);
  opts.log(
    `taskwire pid ${child.pid} on :${port}${root !== ROOT ? ` from ${root}` : ''} (${entry}), ` +
      `database ${db.name}, log ${path.relative(ROOT, logFile)}`,
  );
  const http = new HttpClient(httpUrl, { maxSockets: 64 });
  const statsPool = new pg.Pool({ connectionString: db.url, max: 1 });
  return {
    name: 'taskwire',
    mode: 'phoenix',
    httpUrl,
    socketUrl: `ws://127.0.0.1:${port}`,
    child,
    storeComm: 'postgres',
    http,
    dbName: db.name,
    entry,
    token: (user) => mintToken(user),
    probe: (gc = true) => probeOf(child, gc),
    ...profiler(child, profileDir, opts.runId, 'taskwire'),
    async stats() {
      const res = await http.request('GET', '/metrics');
      const text = String(res.body);
      return {
        sockets: metric(text, 'taskwire_open_sockets') ?? 0,
        channels: metric(text, 'taskwire_joined_channels'),
        actors: metric(text, 'taskwire_task_actors'),
        conflated: metric(text, 'taskwire_conflated_updates_total'),
        eventsOut: metric(text, 'taskwire_events_delivered_total'),
        snapshotRows: metric(text, 'taskwire_snapshot_rows_total'),
        progressIn: metric(text, 'taskwire_progress_events_total'),
        attemptsCompleted: (() => {
          const line = text.split('\n').filter((l) => l.startsWith('taskwire_attempts_total{'));
          return line
            .filter((l) => l.includes('outcome="completed"'))
            .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
        })(),
      };
    },
    dbWrites: dbWritesOf(statsPool, 'taskwire', 'graphile_worker'),
    metricsPerProcess: (names, tries) => metricsPerProcess(httpUrl, names, tries),
    async pickupMs(sinceMs) {
      const { rows } = await statsPool.query<{ p50: number; p99: number; max: number; count: number }>(
        `select percentile_cont(0.5) within group (order by ms) as p50,
                percentile_cont(0.99) within group (order by ms) as p99, max(ms)::float8 as max,
                count(*)::int as count
           from (select extract(epoch from started_at - inserted_at)::float8 * 1000 as ms
                   from taskwire.tasks
                  where attempt = 1 and started_at is not null and inserted_at >= to_timestamp($1::float8 / 1000)) s`,
        [sinceMs],
      );
      return rows[0]?.p50 === null ? undefined : rows[0];
    },
    async stop() {
      http.close();
      await statsPool.end().catch(() => {});
      const code = await child.stop(15_000);
      if (code !== 0) opts.log(`taskwire exited with ${code}`);
      if (ownDb) await db.drop().catch((err: unknown) => opts.log(`could not drop ${db.name}: ${err}`));
      return opts.cpuProf ? newestProfile(profileDir, startedAt) : undefined;
    },
  };
}

/** True when Redis answers PING at REDIS_URL. */
export function redisReachable(url = REDIS_URL, timeoutMs = 1000): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: u.hostname, port: Number(u.port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export const REDIS_HINT =
  'start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no';

/** The BullMQ peer, on PostgreSQL (a fresh database, BullMQ's schema `bullmq`) or on Redis. */
export async function startPeer(
  name: TargetName,
  backend: 'postgres' | 'redis',
  opts: StartOptions,
): Promise<RunningTarget> {
  if (backend === 'redis' && !(await redisReachable()))
    throw new Error(`Redis is not reachable at ${REDIS_URL}; ${REDIS_HINT}`);
  mkdirSync(path.join(RESULTS_DIR, 'logs'), { recursive: true });
  const profileDir = path.join(RESULTS_DIR, 'profiles');
  mkdirSync(profileDir, { recursive: true });
  const logFile = path.join(RESULTS_DIR, 'logs', `${opts.runId}-${name}.log`);
  const startedAt = Date.now();
  const db = backend === 'postgres' ? await createDatabase() : undefined;
  const child = spawnNode(PEER, [], {
    env: {
      ...cleanEnv(),
      PORT: '0', // it binds a port of its own and prints it
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      PEER_BACKEND: backend,
      ...(db
        ? { DATABASE_URL: db.url }
        : { REDIS_URL, PEER_PREFIX: `bench-${randomBytes(4).toString('hex')}` }),
      PEER_SECRET: BENCH_SECRET,
      PEER_QUEUE: 'tasks',
      PEER_CONCURRENCY: '100',
      ...opts.env,
    },
    nodeArgs: nodeArgs(Boolean(opts.cpuProf), profileDir),
    nofile: opts.nofile ?? nofileHardLimit(),
    logFile,
    cwd: ROOT,
  });
  const dropDb = () => db?.drop().catch((err: unknown) => opts.log(`could not drop ${db.name}: ${err}`));
  let httpUrl: string;
  try {
    httpUrl = await listeningUrl(child, /peer listening on (http:\/\/\S+)/).catch(async (err) => {
      await child.stop(2000);
      throw new Error(`${(err as Error).message}\n--- last lines of ${child.logFile}:\n${child.tail(20)}`);
    });
    await ready(child, httpUrl, name);
  } catch (err) {
    await dropDb();
    throw err;
  }
  const port = Number(new URL(httpUrl).port);
  opts.log(
    `${name} pid ${child.pid} on :${port}, BullMQ on ${db ? `PostgreSQL, database ${db.name}` : 'Redis'}, ` +
      `log ${path.relative(ROOT, logFile)}`,
  );
  const http = new HttpClient(httpUrl, { maxSockets: 64 });
  const statsPool = db ? new pg.Pool({ connectionString: db.url, max: 1 }) : undefined;
  return {
    name,
    mode: 'socketio',
    httpUrl,
    socketUrl: httpUrl,
    child,
    storeComm: backend === 'postgres' ? 'postgres' : 'redis-server',
    http,
    dbName: db?.name,
    token: (user) => mintToken(user),
    probe: (gc = true) => probeOf(child, gc),
    ...profiler(child, profileDir, opts.runId, name),
    async stats() {
      const res = await http.request('GET', '/bench/stats');
      const counts = res.body?.jobCounts ?? {};
      return {
        sockets: res.body?.sockets ?? 0,
        active: counts.active,
        completed: counts.completed,
        workerCompleted: res.body?.workerCompleted,
        relayedCompleted: res.body?.relayedCompleted,
      };
    },
    dbWrites: statsPool ? dbWritesOf(statsPool, undefined, 'bullmq') : async () => undefined,
    metricsPerProcess: async () => [],
    pickupMs: async () => undefined,
    async stop() {
      http.close();
      await statsPool?.end().catch(() => {});
      const code = await child.stop(15_000);
      if (code !== 0) opts.log(`${name} exited with ${code}`);
      await dropDb();
      return opts.cpuProf ? newestProfile(profileDir, startedAt) : undefined;
    },
  };
}

/** The graphile-worker ceiling process (bench/peers/graphile-ceiling), on a fresh database. */
export interface RunningCeiling {
  readonly child: Child;
  readonly dbName: string;
  dbWrites(): Promise<DbWrites>;
  stop(): Promise<void>;
}

export async function startCeiling(opts: StartOptions): Promise<RunningCeiling> {
  const db = await createDatabase();
  mkdirSync(path.join(RESULTS_DIR, 'logs'), { recursive: true });
  const logFile = path.join(RESULTS_DIR, 'logs', `${opts.runId}-graphile-ceiling.log`);
  const child = spawnNode(CEILING, [], {
    env: {
      ...cleanEnv(),
      DATABASE_URL: db.url,
      LOG_LEVEL: 'warn',
      CEILING_CONCURRENCY: '100',
      CEILING_POOL_SIZE: '10',
      ...opts.env,
    },
    logFile,
    cwd: ROOT,
  });
  try {
    await child.line(/graphile ceiling ready/, 60_000);
  } catch (err) {
    await child.stop(2000);
    await db.drop().catch(() => {});
    throw new Error(`${(err as Error).message}\n--- last lines of ${logFile}:\n${child.tail(20)}`);
  }
  opts.log(`graphile-ceiling pid ${child.pid}, database ${db.name}, log ${path.relative(ROOT, logFile)}`);
  const statsPool = new pg.Pool({ connectionString: db.url, max: 1 });
  return {
    child,
    dbName: db.name,
    dbWrites: dbWritesOf(statsPool, undefined, 'graphile_worker'),
    async stop() {
      await statsPool.end().catch(() => {});
      const code = await child.stop(15_000);
      if (code !== 0) opts.log(`graphile-ceiling exited with ${code}`);
      await db.drop().catch((err: unknown) => opts.log(`could not drop ${db.name}: ${err}`));
    },
  };
}

export function startTarget(name: TargetName, opts: StartOptions): Promise<RunningTarget> {
  if (name === 'taskwire') return startTaskwire(opts);
  const backend = peerBackend(name);
  if (!backend) throw new Error(`${name} is not a server; only the throughput scenario measures it`);
  return startPeer(name, backend, opts);
}

/** Creates tasks over HTTP as `token`'s user, `concurrency` at a time; returns their ids in order. */
export async function createTasks(
  target: RunningTarget,
  token: string,
  bodies: Array<Record<string, unknown>>,
  concurrency = 32,
): Promise<string[]> {
  const ids: string[] = new Array(bodies.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, bodies.length) }, async () => {
      while (next < bodies.length) {
        const i = next++;
        const res = await target.http.request('POST', '/api/tasks', bodies[i], token);
        if (res.status !== 201) throw new Error(`create task: ${res.status} ${JSON.stringify(res.body)}`);
        ids[i] = res.body.task_id;
      }
    }),
  );
  return ids;
}
