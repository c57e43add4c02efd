// TaskActor: one task's live state (the GenServer of the seed). Every change runs to completion
// synchronously (no await inside a change), bumps seq, folds the event into the state and hands
// one event object to the hub. No database on this path: the snapshotter persists in the
// background, and terminal states are folded in only after the runner has persisted them.
import { isTerminal, type TaskRecord } from '../db/index.ts';
import { makeEvent, type TaskEventName } from './events.ts';
import { TaskHub } from './hub.ts';

export interface ActorHooks {
  /** The actor has unsaved progress. */
  dirty(actor: TaskActor): void;
  /** A method threw: the supervisor replaces the actor. */
  crashed(actor: TaskActor, err: unknown): void;
  /** The actor reached a terminal state. */
  terminal(actor: TaskActor): void;
}

/** What the runner needs to end an attempt: the values to persist. */
export interface PendingEnd {
  seq: number;
  progress: number;
  message: string | null;
}

export class TaskActor {
  readonly id: string;
  readonly hub: TaskHub;
  state: TaskRecord;
  /** Aborts the running attempt of this process, when there is one. */
  attempt: AbortController | null = null;
  /** A terminal (or retry) write is in flight: progress is no longer accepted. */
  closing = false;
  /** Progress seq of the last snapshot handed to the snapshotter, and of its last audit checkpoint. */
  savedSeq = 0;
  checkpointProgress = 0;
  stopped = false;
  lingerTimer: NodeJS.Timeout | undefined;
  readonly #hooks: ActorHooks;
  #settleWaiters: Array<(task: TaskRecord) => void> = [];

  constructor(state: TaskRecord, hooks: ActorHooks) {
    this.id = state.task_id;
    this.state = state;
    this.savedSeq = state.seq;
    this.#hooks = hooks;
    this.hub = new TaskHub(state);
  }

  get owner(): string {
    return this.state.owner;
  }

  /** A new attempt was claimed: take its state and announce `started`. */
  start(claimed: TaskRecord, controller: AbortController): void {
    try {
      this.attempt = controller;
      this.closing = false;
      this.checkpointProgress = 0;
      this.state = claimed;
      this.savedSeq = claimed.seq;
      this.#emit('started', {}, false); // the claim already gave `started` its seq
    } catch (err) {
      this.#hooks.crashed(this, err);
    }
  }

  /** ctx.progress(): clamp to 0..1, never backwards within an attempt; drop calls after the end. */
  progress(fraction: number, message?: string): void {
    try {
      const s = this.state;
      if (s.status !== 'running' || this.closing || this.stopped) return;
      const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : s.progress;
      s.progress = Math.max(f, s.progress);
      if (message !== undefined)
        s.message = typeof message === 'string' ? message.slice(0, 10_000) : String(message);
      this.#emit('progress');
      this.#hooks.dirty(this);
    } catch (err) {
      this.#hooks.crashed(this, err);
    }
  }

  /** Stops accepting progress and returns the values an attempt's end must persist. */
  beginEnd(): PendingEnd {
    this.closing = true;
    return { seq: this.state.seq + 1, progress: this.state.progress, message: this.state.message };
  }

  /**
   * Folds a persisted transition (completed, failed, cancelled, retrying) into the state and
   * announces it. `record` is the row as written; `extra` goes into the event payload.
   */
  commit(
    name: Exclude<TaskEventName, 'started' | 'progress'>,
    record: TaskRecord,
    extra: Record<string, unknown> = {},
  ): void {
    try {
      if (record.seq <= this.state.seq && isTerminal(this.state.status)) return; // already folded
      this.state = record;
      this.savedSeq = record.seq;
      this.closing = false;
      this.attempt = null;
      this.#emit(name, extra, false);
      if (isTerminal(record.status)) {
        const waiters = this.#settleWaiters;
        this.#settleWaiters = [];
        for (const w of waiters) w(record);
        this.#hooks.terminal(this);
      }
    } catch (err) {
      this.#hooks.crashed(this, err);
    }
  }

  /** Resolves when the task reaches a terminal state (for cancel, which waits for the attempt to end). */
  settled(): Promise<TaskRecord> {
    if (isTerminal(this.state.status)) return Promise.resolve(this.state);
    return new Promise((resolve) => this.#settleWaiters.push(resolve));
  }

  #emit(name: TaskEventName, extra: Record<string, unknown> = {}, bump = true): void {
    const s = this.state;
    if (bump) s.seq += 1;
    const at = Date.now();
    s.updated_at = new Date(at).toISOString();
    const event = makeEvent(name, {
      task_id: s.task_id,
      status: s.status,
      progress: s.progress,
      message: s.message,
      seq: s.seq,
      attempt: s.attempt,
      at,
      ...extra,
    });
    this.hub.publish(event, s);
  }
}
