// The worker runtime: graphile-worker claims jobs (LISTEN/NOTIFY for new ones, polling for
// scheduled ones) and hands each to taskwire's runner. It never handles signals itself: the
// composition root decides how to stop.
import { EventEmitter } from 'node:events';
import { Logger as QueueLogger, type Runner, run, type WorkerEvents } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from 'pino';
import { RUN_TASK_JOB } from './jobs.ts';

export interface WorkerOptions {
  pool: pg.Pool;
  concurrency: number;
  pollIntervalMs: number;
  log: Logger;
  /** Runs one job; resolving acknowledges it, throwing lets the library re-offer it later. */
  runJob: (job: QueueJob) => Promise<void>;
  schema?: string;
  /** How long stop() lets running jobs finish; the caller aborts them at its own deadline first. */
  shutdownTimeoutMs: number;
}

/** A job taken by this process's worker: a wake-up to run the fairest runnable task. */
export interface QueueJob {
  /** The library's job id: the running attempt records it, so a rescue runs that task again. */
  id: string;
  /** 1 when first taken; more after a rescue or a failed acknowledgement. */
  attempts: number;
  /** When the job became due. */
  runAt: Date;
}

export interface QueueWorker {
  /** graphile-worker's ids of this process's workers (for rescue after a crash). */
  workerIds(): string[];
  readonly running: boolean;
  stop(): Promise<void>;
}

/**
 * graphile-worker warns at start when the pool is smaller than the concurrency, for workers that
 * each hold a connection. taskwire's do not: one local queue fetches for all of them, and their
 * claims and ends are grouped into shared statements. So that advice goes to debug.
 */
const POOL_SIZE_ADVICE = /^WARNING: having maxPoolSize/;

function queueLogger(log: Logger): QueueLogger {
  return new QueueLogger((scope) => (level, message, meta) => {
    const fields = { scope: { label: scope.label, workerId: scope.workerId, jobId: scope.jobId }, ...meta };
    if (level === 'error') log.error(fields, message);
    else if (level === 'warning' && POOL_SIZE_ADVICE.test(message)) log.debug(fields, message);
    else if (level === 'warning') log.warn(fields, message);
    else log.debug(fields, message);
  });
}

export async function startWorker(opts: WorkerOptions): Promise<QueueWorker> {
  const ids = new Set<string>();
  let running = true;
  // Subscribed before run(): the workers are created (and announced) while it starts.
  const events: WorkerEvents = new EventEmitter();
  events.on('worker:create', ({ worker }) => ids.add(worker.workerId));
  events.on('pool:create', ({ workerPool }) => ids.add(workerPool.id));
  const runner: Runner = await run({
    events,
    pgPool: opts.pool,
    concurrency: opts.concurrency,
    pollInterval: opts.pollIntervalMs,
    noHandleSignals: true,
    gracefulShutdownAbortTimeout: opts.shutdownTimeoutMs + 5000,
    schema: opts.schema ?? 'graphile_worker',
    logger: queueLogger(opts.log),
    preset: {
      worker: {
        // One fetcher per process that takes up to `concurrency` jobs at a time, instead of every
        // idle worker polling on its own; prefetched jobs are locked under the pool's id, which
        // liveness records, so a dead process's prefetched jobs are rescued like running ones.
        localQueue: { size: opts.concurrency },
        // Acknowledge the jobs that end in one loop turn together (their task rows are already
        // written: the acknowledgement only deletes the job).
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      },
    },
    taskList: {
      [RUN_TASK_JOB]: async (_payload, helpers) => {
        await opts.runJob({
          id: String(helpers.job.id),
          attempts: helpers.job.attempts,
          runAt: new Date(helpers.job.run_at),
        });
      },
    },
  });
  runner.promise.then(
    () => {
      running = false;
    },
    (err: unknown) => {
      running = false;
      opts.log.error({ err }, 'queue worker stopped with an error');
    },
  );
  let stopping: Promise<void> | undefined;
  return {
    workerIds: () => [...ids],
    get running() {
      return running;
    },
    stop() {
      running = false;
      stopping ??= runner.stop();
      return stopping;
    },
  };
}
