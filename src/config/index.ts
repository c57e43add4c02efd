// Reads and validates the environment once, with defaults. Nothing else in taskwire reads
// process.env: the composition root passes the resulting Config down to every part.
import os from 'node:os';
import path from 'node:path';
import { MAX_DELAY_MS } from '../contract/index.ts';

export interface Config {
  port: number;
  host: string;
  /** External PostgreSQL. When undefined an embedded PostgreSQL runs in dataDir. */
  databaseUrl: string | undefined;
  dataDir: string;
  /** Port of the embedded PostgreSQL (only used when databaseUrl is unset). */
  embeddedPgPort: number;
  /** HS256 secret. When undefined one is generated once into dataDir. */
  secret: string | undefined;
  logLevel: string;
  /** Pretty logs (a terminal in development) instead of JSON lines. */
  logPretty: boolean;
  defaultTaskType: string;
  /** Extra task modules (paths) whose defineTask() exports are registered at start. */
  taskModules: string[];
  /** Jobs run at once by this process (0: it runs none, serving only the API and sockets). */
  concurrency: number;
  dbPoolSize: number;
  /** How often the queue polls for jobs scheduled in the future. */
  pollIntervalMs: number;
  bodyLimitBytes: number;
  snapshotIntervalMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  defaultMaxAttempts: number;
  shutdownTimeoutMs: number;
  /** Bounded wait for a database answer on the request path before 503. */
  dbTimeoutMs: number;
  /** Origins allowed to open sockets; empty means any (development). */
  allowedOrigins: string[];
  maxFrameBytes: number;
  maxChannelsPerSocket: number;
  socketIdleTimeoutMs: number;
  /** A subscriber whose buffer passes this gets conflated progress. */
  socketSoftBufferBytes: number;
  /** A subscriber whose buffer passes this is disconnected (1011). */
  socketHardBufferBytes: number;
  longPollWindowMs: number;
  /** Sockets one user may hold open at once. */
  maxSocketsPerUser: number;
  /** Inbound frames per second per socket. */
  maxMessagesPerSecond: number;
  /** Task creations per user per minute (429 rate_limited past it). */
  maxCreatesPerMinute: number;
  /** Liveness: how often this process heartbeats, and when a silent one counts as dead. */
  heartbeatIntervalMs: number;
  nodeDeadAfterMs: number;
  /** Name of this process in logs and the nodes table. */
  nodeId: string | undefined;
  /** What joins the nodes (api.md "Server"): one process, LISTEN/NOTIFY, or a message engine. */
  bus: BusKind;
  natsUrl: string | undefined;
  redisUrl: string | undefined;
  /** Keeps clusters sharing one engine apart; default: derived from the database's identity. */
  busNamespace: string | undefined;
  /** How often a node says on the bus that it is alive; silent for 5 times this, it is gone. */
  busHeartbeatMs: number;
  /** `taskwire start`: server processes sharing the port (`auto`: one per CPU). */
  processes: number;
  /** Finished tasks older than this are pruned with their audit rows; 0 keeps everything. */
  retentionSeconds: number;
  /** How often a node looks for tasks past the retention, and tasks deleted per batch. */
  pruneIntervalMs: number;
  pruneBatchSize: number;
  /** How often `admin:tasks` carries the `stats` event. */
  statsIntervalMs: number;
  /** Running tasks per owner across all nodes (null: no cap). */
  userConcurrency: number | null;
  /** How far ahead `run_at` / `delay_ms` may put a task's start. */
  maxDelayMs: number;
  /** The owner of the tasks that schedules create. */
  scheduleOwner: string;
  /** Write-behind interval of streamed output (one statement per flush for all tasks). */
  outputFlushMs: number;
  /** Bytes of one output chunk as JSON. */
  outputChunkBytes: number;
  /** Chunks and bytes of one attempt's output; past either the attempt fails. */
  outputMaxChunks: number;
  outputMaxBytes: number;
  /** Growth of the resident set after which one memory-reducing GC gives freed pages back; 0: never. */
  heapReleaseBytes: number;
  /** A request whose head and body have not all arrived by then gets 408 (slow clients hold memory). */
  requestTimeoutMs: number;
}

export type BusKind = 'memory' | 'postgres' | 'nats' | 'redis';

const BUS_KINDS: BusKind[] = ['memory', 'postgres', 'nats', 'redis'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function int(env: Env, key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${key} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function str(env: Env, key: string): string | undefined {
  const raw = env[key];
  return raw === undefined || raw === '' ? undefined : raw;
}

function list(env: Env, key: string): string[] {
  return (str(env, key) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function bool(env: Env, key: string, fallback: boolean): boolean {
  const raw = str(env, key);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${key} must be true or false, got ${JSON.stringify(raw)}`);
}

/** api.md: `postgres` when DATABASE_URL is set, else `memory` (the embedded database is one process's). */
function busKind(env: Env): BusKind {
  const raw = str(env, 'TASKWIRE_BUS');
  if (raw === undefined) return str(env, 'DATABASE_URL') ? 'postgres' : 'memory';
  if (!BUS_KINDS.includes(raw as BusKind)) {
    throw new ConfigError(`TASKWIRE_BUS must be one of ${BUS_KINDS.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  return raw as BusKind;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** A duration in seconds: `0`, or an integer and a unit (`90s`, `30m`, `12h`, `7d`). */
function duration(env: Env, key: string, fallback: number): number {
  const raw = str(env, key);
  if (raw === undefined) return fallback;
  if (raw === '0') return 0;
  const m = /^(\d{1,9})(s|m|h|d)$/.exec(raw);
  if (!m)
    throw new ConfigError(`${key} must be 0 or a duration like 30m, 12h or 7d, got ${JSON.stringify(raw)}`);
  return Number(m[1]) * DURATION_UNITS[m[2]];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const logLevel = str(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    );
  }
  const config: Config = {
    port: int(env, 'PORT', 4000, 0, 65535),
    host: str(env, 'HOST') ?? '0.0.0.0',
    databaseUrl: str(env, 'DATABASE_URL'),
    dataDir: path.resolve(str(env, 'TASKWIRE_DATA_DIR') ?? '.taskwire'),
    embeddedPgPort: int(env, 'TASKWIRE_PG_PORT', 15432, 1, 65535),
    secret: str(env, 'TASKWIRE_SECRET'),
    logLevel,
    logPretty: bool(env, 'TASKWIRE_LOG_PRETTY', false),
    defaultTaskType: str(env, 'TASKWIRE_DEFAULT_TYPE') ?? 'demo',
    taskModules: list(env, 'TASKWIRE_TASKS'),
    concurrency: int(env, 'TASKWIRE_CONCURRENCY', 100, 0, 10_000),
    dbPoolSize: int(env, 'TASKWIRE_DB_POOL_SIZE', 10, 2, 1000),
    pollIntervalMs: int(env, 'TASKWIRE_POLL_INTERVAL_MS', 1000, 10, 60_000),
    bodyLimitBytes: int(env, 'TASKWIRE_BODY_LIMIT', 1_048_576, 64),
    snapshotIntervalMs: int(env, 'TASKWIRE_SNAPSHOT_INTERVAL_MS', 1000, 10, 60_000),
    retryBaseMs: int(env, 'TASKWIRE_RETRY_BASE_MS', 1000, 0),
    retryMaxMs: int(env, 'TASKWIRE_RETRY_MAX_MS', 300_000, 0),
    defaultMaxAttempts: int(env, 'TASKWIRE_MAX_ATTEMPTS', 3, 1, 25),
    shutdownTimeoutMs: int(env, 'TASKWIRE_SHUTDOWN_TIMEOUT_MS', 25_000, 0),
    dbTimeoutMs: int(env, 'TASKWIRE_DB_TIMEOUT_MS', 5000, 100),
    allowedOrigins: list(env, 'TASKWIRE_ALLOWED_ORIGINS'),
    maxFrameBytes: int(env, 'TASKWIRE_MAX_FRAME_BYTES', 1_048_576, 256),
    maxChannelsPerSocket: int(env, 'TASKWIRE_MAX_CHANNELS', 100, 1),
    socketIdleTimeoutMs: int(env, 'TASKWIRE_SOCKET_IDLE_MS', 60_000, 1000),
    socketSoftBufferBytes: int(env, 'TASKWIRE_SOCKET_SOFT_BUFFER', 262_144, 1024),
    socketHardBufferBytes: int(env, 'TASKWIRE_SOCKET_HARD_BUFFER', 8_388_608, 1024),
    longPollWindowMs: int(env, 'TASKWIRE_LONGPOLL_WINDOW_MS', 10_000, 100, 19_000),
    maxSocketsPerUser: int(env, 'TASKWIRE_MAX_SOCKETS_PER_USER', 1000, 1),
    maxMessagesPerSecond: int(env, 'TASKWIRE_MAX_MESSAGES_PER_SECOND', 200, 1),
    maxCreatesPerMinute: int(env, 'TASKWIRE_MAX_CREATES_PER_MINUTE', 6000, 1),
    heartbeatIntervalMs: int(env, 'TASKWIRE_HEARTBEAT_MS', 2000, 100),
    nodeDeadAfterMs: int(env, 'TASKWIRE_NODE_DEAD_AFTER_MS', 10_000, 500),
    nodeId: str(env, 'TASKWIRE_NODE_ID'),
    bus: busKind(env),
    natsUrl: str(env, 'NATS_URL'),
    redisUrl: str(env, 'REDIS_URL'),
    busNamespace: str(env, 'TASKWIRE_BUS_NAMESPACE'),
    busHeartbeatMs: int(env, 'TASKWIRE_BUS_HEARTBEAT_MS', 1000, 50, 60_000),
    processes:
      str(env, 'TASKWIRE_PROCESSES') === 'auto'
        ? os.availableParallelism()
        : int(env, 'TASKWIRE_PROCESSES', 1, 1, 256),
    retentionSeconds: duration(env, 'TASKWIRE_RETENTION', 7 * 86_400),
    pruneIntervalMs: int(env, 'TASKWIRE_PRUNE_INTERVAL_MS', 60_000, 100),
    pruneBatchSize: int(env, 'TASKWIRE_PRUNE_BATCH', 500, 1, 100_000),
    statsIntervalMs: int(env, 'TASKWIRE_STATS_INTERVAL_MS', 5000, 100, 3_600_000),
    userConcurrency:
      str(env, 'TASKWIRE_USER_CONCURRENCY') === undefined
        ? null
        : int(env, 'TASKWIRE_USER_CONCURRENCY', 0, 1, 1_000_000),
    maxDelayMs: int(env, 'TASKWIRE_MAX_DELAY_MS', MAX_DELAY_MS, 0, MAX_DELAY_MS),
    scheduleOwner: str(env, 'TASKWIRE_SCHEDULE_OWNER') ?? 'system',
    outputFlushMs: int(env, 'TASKWIRE_OUTPUT_FLUSH_MS', 100, 5, 60_000),
    outputChunkBytes: int(env, 'TASKWIRE_OUTPUT_CHUNK_BYTES', 65_536, 16, 16_777_216),
    outputMaxChunks: int(env, 'TASKWIRE_OUTPUT_MAX_CHUNKS', 1_000_000, 1),
    outputMaxBytes: int(env, 'TASKWIRE_OUTPUT_MAX_BYTES', 67_108_864, 16),
    heapReleaseBytes: int(env, 'TASKWIRE_HEAP_RELEASE_MB', 40, 0, 1_000_000) * 1_048_576,
    requestTimeoutMs: int(env, 'TASKWIRE_REQUEST_TIMEOUT_MS', 30_000, 1000),
    ...overrides,
  };
  if (config.bus === 'nats' && !config.natsUrl) throw new ConfigError('TASKWIRE_BUS=nats needs NATS_URL');
  if (config.bus === 'redis' && !config.redisUrl) throw new ConfigError('TASKWIRE_BUS=redis needs REDIS_URL');
  if (config.bus === 'postgres' && !config.databaseUrl) {
    // The embedded database serves one process; `--processes` passes its URL to each worker.
    throw new ConfigError('TASKWIRE_BUS=postgres needs DATABASE_URL (or `taskwire start --processes N`)');
  }
  if (config.socketHardBufferBytes < config.socketSoftBufferBytes) {
    throw new ConfigError('TASKWIRE_SOCKET_HARD_BUFFER must be at least TASKWIRE_SOCKET_SOFT_BUFFER');
  }
  if (config.retryMaxMs < config.retryBaseMs) {
    throw new ConfigError('TASKWIRE_RETRY_MAX_MS must be at least TASKWIRE_RETRY_BASE_MS');
  }
  return config;
}
