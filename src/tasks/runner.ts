// Runner: one attempt of one task, from claim to its fenced end. It starts the handler with a
// context (input, attempt, progress, signal, log), races it against the attempt's signal
// (cancel, timeout, shutdown), then persists the outcome (completed, failed, cancelled, or
// retrying with backoff) before the job is acknowledged, and only then announces it.

import type pg from 'pg';
import type { Logger } from 'pino';
import { storableString, toStorable } from '../contract/storable.ts';
import {
  type AttemptEnd,
  type Caps,
  type Claim,
  type ClaimResult,
  claimAttempts,
  finishAttempts,
  isDatabaseUnavailable,
  releaseAttempt,
  retryAttempt,
  type TaskRecord,
  withTransaction,
} from '../db/index.ts';
import { addWakeups, enqueueTaskJob, type FreedSlot, type QueueJob, sweepWakeups } from '../queue/index.ts';
import type { Transition } from './actor.ts';
import {
  AttemptTimeoutError,
  CancelledError,
  OutputError,
  OutputLimitError,
  ShutdownError,
} from './errors.ts';
import type { TaskFeed } from './feed.ts';
import { GroupCommit } from './group-commit.ts';
import type { OutputWriter } from './output-writer.ts';
import type { Registry } from './registry.ts';
import type { Supervisor } from './supervisor.ts';
import type { TaskContext, TaskType, TaskTypes } from './task-type.ts';

export interface RunnerOptions {
  pool: pg.Pool;
  registry: Registry;
  supervisor: Supervisor;
  feed: TaskFeed;
  output: OutputWriter;
  types: TaskTypes;
  nodeId: string;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Running tasks per owner across all nodes (null: no cap). */
  userConcurrency: number | null;
  log: Logger;
  /** Observes attempt outcomes (metrics). */
  onOutcome?: (outcome: Outcome['kind'], type: string) => void;
}

export type Outcome =
  | { kind: 'completed'; result: unknown }
  | { kind: 'failed'; error: { message: string }; retryable: boolean }
  | { kind: 'cancelled' }
  | { kind: 'shutdown' };

/** Backoff before attempt n+1 after attempt n failed: base * 2^(n-1), capped, with up to 10% jitter. */
export function retryDelay(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp + exp * 0.1 * Math.random());
}

/** A thrown value as api.md's error, in storable form (what subscribers see is what is kept). */
function errorOf(value: unknown): { message: string } {
  return { message: storableString(errorText(value)) };
}

function errorText(value: unknown): string {
  if (value instanceof Error) return value.message || value.name;
  if (typeof value === 'string') return value;
  try {
    return `non-Error thrown: ${JSON.stringify(value)}`;
  } catch {
    return `non-Error thrown: ${String(value)}`;
  }
}

/** An attempt running on this node. */
interface Running {
  controller: AbortController;
  /** The task as the attempt's end left it (null: fenced out, or the end could not be written). */
  ended: Promise<TaskRecord | null>;
}

export class Runner {
  readonly #o: RunnerOptions;
  /** Attempts running on this node, by task id. */
  readonly #active = new Map<string, Running>();
  #stopping = false;
  /** Attempts that start, or end, at the same time share one statement (one commit). */
  readonly #claims: GroupCommit<Claim, ClaimResult | null>;
  readonly #ends: GroupCommit<AttemptEnd, TaskRecord | null>;
  /** Wake-ups for tasks a cap held back, added when an attempt frees a slot (one statement per turn). */
  readonly #wakeups: GroupCommit<FreedSlot, undefined>;
  readonly #caps: Caps;

  constructor(opts: RunnerOptions) {
    this.#o = opts;
    this.#caps = { user: opts.userConcurrency, types: opts.types.caps() };
    this.#claims = new GroupCommit((claims) => claimAttempts(opts.pool, opts.nodeId, claims, this.#caps));
    this.#ends = new GroupCommit((ends) => finishAttempts(opts.pool, ends));
    this.#wakeups = new GroupCommit(async (freed) => {
      await addWakeups(opts.pool, freed, this.#caps);
      return freed.map(() => undefined);
    });
  }

  /** The caps the claims apply (api.md "Fair scheduling"). */
  get caps(): Caps {
    return this.#caps;
  }

  /**
   * Runs one queue job: claims the attempt it stands for (the fairest runnable task, or the task a
   * dead node was running under this job) and runs it. Resolving acknowledges the job; a job with
   * nothing to run is simply acknowledged (it was a wake-up for work a cap holds back, or that
   * another job took).
   */
  async runJob(job: Pick<QueueJob, 'id'>): Promise<void> {
    const { types } = this.#o;
    // While the database is away, keep the job: a failed job could not be released either, and
    // would stay locked by this (live) process.
    const claim = await this.#persist(() => this.#claims.submit({ jobId: job.id }));
    if (!claim) return;
    if (claim.kind === 'lost') return this.#lost(claim.task);
    const taskId = claim.task.task_id;
    const controller = new AbortController();
    let settle!: (record: TaskRecord | null) => void;
    const ended = new Promise<TaskRecord | null>((resolve) => {
      settle = resolve;
    });
    const running: Running = { controller, ended };
    this.#o.supervisor.start(claim.task, controller).start(claim.outputReset);
    this.#active.set(taskId, running);
    let endRecord: TaskRecord | null = null;
    const taskLog = this.#o.log.child({
      task_id: taskId,
      attempt: claim.task.attempt,
      type: claim.task.type,
    });
    const startedAt = performance.now();
    taskLog.debug('attempt started');
    try {
      if (claim.cancelRequested) controller.abort(new CancelledError());
      const type = types.get(claim.task.type);
      const outcome: Outcome = type
        ? await this.#execute(type, claim.task, controller, taskLog)
        : { kind: 'failed', error: { message: `unknown task type ${claim.task.type}` }, retryable: false };
      this.#o.onOutcome?.(outcome.kind, claim.task.type);
      taskLog.info(
        {
          outcome: outcome.kind,
          duration_ms: Math.round(performance.now() - startedAt),
          ...(outcome.kind === 'failed' ? { error: outcome.error.message } : {}),
        },
        'attempt ended',
      );
      endRecord = await this.#end(taskId, claim.task, controller, outcome);
    } finally {
      if (this.#active.get(taskId) === running) this.#active.delete(taskId);
      settle(endRecord);
    }
    if (endRecord) this.#freed(claim.task);
  }

  /**
   * An attempt ended and its slot is free: when a cap may have held tasks back (the owner's, or
   * the type's), add a wake-up so one of them is claimed now (their own jobs were spent finding the
   * cap full). Without caps no task is ever held back, and nothing is added.
   */
  #freed(task: TaskRecord): void {
    if (this.#caps.user === null && this.#caps.types[task.type] === undefined) return;
    this.#wakeups.submit({ owner: task.owner, type: task.type }).catch((err: unknown) => {
      this.#o.log.warn({ err }, 'could not add a wake-up after an attempt ended; the sweep will');
    });
  }

  /**
   * The safety net of the wake-ups: when tasks could start but no job is waiting to start them (a
   * wake-up lost with a process, or spent while a cap was full), adds up to `count`.
   */
  async sweep(count: number): Promise<void> {
    if (count > 0) await sweepWakeups(this.#o.pool, count, this.#caps);
  }

  /** Attempts running on this node. */
  get running(): number {
    return this.#active.size;
  }

  isRunning(taskId: string): boolean {
    return this.#active.has(taskId);
  }

  /**
   * Aborts the attempt of a task running here and returns how it ended (the task as written),
   * or undefined when no attempt of it runs here.
   */
  cancel(taskId: string): Promise<TaskRecord | null> | undefined {
    const running = this.#active.get(taskId);
    if (!running) return undefined;
    if (!running.controller.signal.aborted) running.controller.abort(new CancelledError());
    return running.ended;
  }

  /** Aborts every running attempt (shutdown deadline). */
  abortAll(): void {
    this.#stopping = true;
    for (const { controller } of this.#active.values()) {
      if (!controller.signal.aborted) controller.abort(new ShutdownError());
    }
  }

  async #execute(
    type: TaskType,
    task: TaskRecord,
    controller: AbortController,
    log: Logger,
  ): Promise<Outcome> {
    const { registry } = this.#o;
    const taskId = task.task_id;
    const signal = controller.signal;
    const timeoutMs = type.timeoutMs;
    const timer = timeoutMs
      ? setTimeout(() => controller.abort(new AttemptTimeoutError(timeoutMs)), timeoutMs)
      : undefined;
    const ctx: TaskContext = {
      taskId,
      input: task.input,
      attempt: task.attempt,
      maxAttempts: task.max_attempts,
      signal,
      // A handler that outlives its attempt (it ignored its signal) must not move the next one.
      progress(fraction, message) {
        const actor = registry.get(taskId);
        if (actor?.attempt === controller) actor.progress(fraction, message);
      },
      output(chunk) {
        const actor = registry.get(taskId);
        if (actor?.attempt !== controller) return -1;
        try {
          return actor.output(chunk);
        } catch (err) {
          // Past a limit the attempt fails (the handler also gets the error, to stop at once).
          if (err instanceof OutputLimitError && !controller.signal.aborted) controller.abort(err);
          throw err;
        }
      },
      log,
    };
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((resolve) => {
      onAbort = () => resolve('aborted');
      if (signal.aborted) resolve('aborted');
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    const handled = (async () => type.run(ctx))().then(
      (result) => ({ ok: true as const, result }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    try {
      const first = await Promise.race([handled, aborted]);
      if (signal.aborted) return this.#abortOutcome(signal.reason);
      if (first === 'aborted') return this.#abortOutcome(signal.reason);
      if (first.ok)
        return { kind: 'completed', result: first.result === undefined ? null : toStorable(first.result) };
      return { kind: 'failed', error: errorOf(first.error), retryable: true };
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  #abortOutcome(reason: unknown): Outcome {
    if (reason instanceof CancelledError) return { kind: 'cancelled' };
    if (reason instanceof ShutdownError) return { kind: 'shutdown' };
    // The same output would pass the same limit again: no retry.
    return { kind: 'failed', error: errorOf(reason), retryable: !(reason instanceof OutputError) };
  }

  async #end(
    taskId: string,
    task: TaskRecord,
    controller: AbortController,
    outcome: Outcome,
  ): Promise<TaskRecord | null> {
    const { registry, pool } = this.#o;
    const actor = registry.get(taskId);
    const current = actor?.attempt === controller ? actor : undefined;
    const pending = current?.beginEnd() ?? {
      seq: task.seq + 1,
      progress: task.progress,
      message: task.message,
    };
    // The end is written only after every chunk of output before it is stored (api.md).
    if (current) await this.#persist(() => this.#o.output.drain(current));
    const base = {
      taskId,
      attempt: task.attempt,
      seq: pending.seq,
      progress: pending.progress,
      message: pending.message,
    };

    if (outcome.kind === 'shutdown') {
      // Not an end: the task goes back to the queue at once, for another process (or this one
      // restarted), and the interrupted attempt does not count against max_attempts.
      const error = { message: 'the attempt was interrupted by a server shutdown; it runs again' };
      const record = await this.#persist(() =>
        withTransaction(pool, async (client) => {
          const row = await releaseAttempt(client, { ...base, error });
          if (row) await enqueueTaskJob(client, taskId);
          return row;
        }),
      );
      if (!record) throw new ShutdownError(); // could not release it: the queue offers the job again
      // Announced with the attempt that was interrupted.
      this.#announce(taskId, controller, { ...record, attempt: task.attempt }, 'retrying', {
        error,
        retry_at: record.updated_at,
      });
      return record;
    }
    if (outcome.kind === 'failed' && outcome.retryable && task.attempt < task.max_attempts) {
      const retryAt = new Date(
        Date.now() + retryDelay(task.attempt, this.#o.retryBaseMs, this.#o.retryMaxMs),
      );
      const record = await this.#persist(() =>
        withTransaction(pool, async (client) => {
          const row = await retryAttempt(client, { ...base, error: outcome.error, retryAt });
          if (row) await enqueueTaskJob(client, taskId, retryAt);
          return row;
        }),
      );
      this.#announce(taskId, controller, record, 'retrying', {
        error: outcome.error,
        retry_at: retryAt.toISOString(),
      });
      return record;
    }
    const end =
      outcome.kind === 'completed'
        ? { status: 'completed' as const, result: outcome.result, error: null, progress: 1 }
        : outcome.kind === 'cancelled'
          ? { status: 'cancelled' as const, result: null, error: null, progress: pending.progress }
          : { status: 'failed' as const, result: null, error: outcome.error, progress: pending.progress };
    let written: { record: TaskRecord | null; end: typeof end };
    try {
      written = { record: await this.#persist(() => this.#ends.submit({ ...base, ...end })), end };
    } catch (err) {
      // Refused for a reason of the database's own (not unavailability): a second try writes the
      // task failed with that reason, so no handler runs again for it. If that is refused too, the
      // queue offers the job again later, and the next claim counts as an attempt.
      const failed = {
        status: 'failed' as const,
        result: null,
        error: { message: storableString(`the task's end could not be stored: ${errorText(err)}`) },
        progress: pending.progress,
      };
      this.#o.log.error(
        { err, task_id: taskId },
        'the end of the attempt could not be stored; failing the task',
      );
      written = { record: await this.#persist(() => this.#ends.submit({ ...base, ...failed })), end: failed };
    }
    const { record } = written;
    const extra =
      written.end.status === 'completed'
        ? { result: written.end.result }
        : written.end.status === 'failed'
          ? { error: written.end.error }
          : {};
    this.#announce(taskId, controller, record, written.end.status, extra);
    return record;
  }

  /**
   * Announces a persisted end through the attempt's actor (the current one, even if it was
   * restarted meanwhile), or straight through the feed when it has none; then the actor goes.
   */
  #announce(
    taskId: string,
    controller: AbortController,
    record: TaskRecord | null,
    name: Transition,
    extra: Record<string, unknown>,
  ): void {
    const actor = this.#o.registry.get(taskId);
    const current = actor?.attempt === controller ? actor : undefined;
    if (!record) {
      // Fenced out: this attempt is no longer current (another node took the task over). Drop
      // the stale actor; its subscribers here rejoin and see the task as it is.
      this.#o.log.warn(
        { task_id: taskId, attempt: current?.state.attempt },
        'attempt end refused: no longer current',
      );
      if (current) this.#o.supervisor.evict(current);
      return;
    }
    if (current) {
      current.end(name, record, extra);
      this.#o.supervisor.release(current);
    } else {
      this.#o.feed.event(record, name, extra);
    }
  }

  /** Retries a statement while the database is unreachable (until shutdown). */
  async #persist<T>(write: () => Promise<T>): Promise<T> {
    let delay = 100;
    for (;;) {
      try {
        return await write();
      } catch (err) {
        if (!isDatabaseUnavailable(err) || this.#stopping) throw err;
        this.#o.log.warn({ err, retry_in_ms: delay }, 'database unavailable; retrying the attempt end');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  /** A task whose last attempt was lost with its node: it has no attempt left, so it fails. */
  async #lost(task: TaskRecord): Promise<void> {
    const taskId = task.task_id;
    const error = { message: 'the process running the last attempt stopped before it finished' };
    const record = await this.#ends.submit({
      taskId,
      attempt: task.attempt,
      seq: task.seq + 1,
      status: 'failed',
      progress: task.progress,
      message: task.message,
      result: null,
      error,
    });
    if (record) {
      this.#o.feed.event(record, 'failed', { error });
      this.#freed(record);
    }
  }
}
