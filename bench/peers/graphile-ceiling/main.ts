// The graphile-worker ceiling: what the queue under taskwire does on this machine with nothing
// on top (no HTTP, no auth, no sockets, no task rows). One process, started by the throughput
// scenario over IPC on a fresh database (DATABASE_URL): a no-op task, jobs added with `addJobs`
// in batches, the local queue and batched completion as taskwire configures them. A run ends
// when the jobs table is empty, so every completion counted is committed. Environment:
// DATABASE_URL, CEILING_CONCURRENCY (jobs at once, taskwire's default 100), CEILING_POOL_SIZE
// (taskwire's default 10), LOG_LEVEL. It must not measure anything graphile-worker does not do.
import { type AddJobsJobSpec, Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import pino from 'pino';

const env = process.env;
const log = pino({ level: env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
if (!env.DATABASE_URL) throw new Error('DATABASE_URL is required');
const concurrency = Number(env.CEILING_CONCURRENCY ?? 100);
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: Number(env.CEILING_POOL_SIZE ?? 10) });
pool.on('error', (err) => log.error({ err }, 'pool error'));
pool.on('connect', (client) => client.on('error', (err) => log.error({ err }, 'client error')));

const logger = new Logger((scope) => (level, message, meta) => {
  const fn = level === 'error' ? log.error : level === 'warning' ? log.warn : log.debug;
  fn.call(log, { scope, ...meta }, message);
});

const utils = await makeWorkerUtils({ pgPool: pool, logger });
await utils.migrate();

/** Completions of the no-op task so far (the task function returned). */
let done = 0;
/** Waiters of `until` (the producers and the end of a run), woken by every completion. */
const waiters = new Set<() => void>();
const runner = await run({
  pgPool: pool,
  concurrency,
  noHandleSignals: true,
  logger,
  preset: {
    worker: {
      localQueue: { size: concurrency },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  },
  taskList: {
    noop: async () => {
      done += 1;
      for (const w of waiters) w();
      waiters.clear();
    },
  },
});

/** Resolves when `check` holds; re-checked after every completion. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise<void>((r) => waiters.add(r));
}

/** Jobs still in graphile-worker's table: 0 once every completion is committed. */
async function jobsLeft(): Promise<number> {
  const { rows } = await pool.query('select count(*)::int as n from graphile_worker._private_jobs');
  return rows[0].n;
}

interface RunCommand {
  cmd: 'run';
  /** Jobs to add and complete. */
  n: number;
  /** Jobs per addJobs call. */
  batch: number;
  /** Added but not yet completed, at most (the producers wait beyond it). */
  backlog: number;
  /** addJobs calls in flight at once. */
  producers: number;
}

export interface CeilingResult {
  completed: number;
  /** ms from the first addJobs to the jobs table found empty. */
  ms: number;
  /** ms from the first addJobs to the last task function's return. */
  lastDoneMs: number;
  jobsLeft: number;
  addCalls: number;
}

async function runJobs(cmd: RunCommand): Promise<CeilingResult> {
  const base = done;
  const t0 = performance.now();
  let added = 0;
  let addCalls = 0;
  const produce = async () => {
    while (added < cmd.n) {
      const size = Math.min(cmd.batch, cmd.n - added);
      added += size;
      await until(() => added - (done - base) <= cmd.backlog);
      const specs: AddJobsJobSpec[] = Array.from({ length: size }, () => ({
        identifier: 'noop',
        payload: {},
      }));
      await utils.addJobs(specs);
      addCalls += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.producers) }, produce));
  await until(() => done - base >= cmd.n);
  const lastDoneMs = performance.now() - t0;
  // The batched completions commit shortly after the last return: wait for the table to empty.
  let left = await jobsLeft();
  const deadline = Date.now() + 30_000;
  while (left > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 2));
    left = await jobsLeft();
  }
  return { completed: done - base, ms: performance.now() - t0, lastDoneMs, jobsLeft: left, addCalls };
}

if (!process.send) {
  console.error('bench/peers/graphile-ceiling/main.ts is started by bench/run.ts');
  process.exit(2);
}
const send = process.send.bind(process);
process.on('message', (raw) => {
  const msg = raw as (RunCommand | { cmd: 'ping' }) & { id: number };
  const reply =
    msg.cmd === 'run'
      ? runJobs(msg)
      : msg.cmd === 'ping'
        ? Promise.resolve({ pid: process.pid })
        : Promise.reject(new Error(`unknown command ${(msg as { cmd: string }).cmd}`));
  reply.then(
    (result) => send({ replyTo: msg.id, result }),
    (err: unknown) => send({ replyTo: msg.id, error: err instanceof Error ? err.stack : String(err) }),
  );
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await runner.stop().catch((err: unknown) => log.error({ err }, 'runner stop'));
  await Promise.resolve(utils.release()).catch(() => {});
  await pool.end().catch(() => {});
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
process.stdout.write(`graphile ceiling ready (concurrency ${concurrency})\n`);
