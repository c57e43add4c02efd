// TaskActor: the live state of one task while an attempt of it runs on this node (the GenServer of
// the seed). Only its own methods change its state; each change runs to completion synchronously
// (no await inside), bumps seq, folds the event into the state and publishes it through the feed.
// No database on this path: the snapshotter persists in the background, and a transition
// (completed, failed, cancelled, retrying) is folded in only after the runner has persisted it.

import type { TaskEventName } from '../contract/index.ts';
import type { Snapshot } from '../db/index.ts';
import { isTerminal, publicTask, type Task, type TaskRecord } from '../db/index.ts';
import { type TaskFeed, type TaskTopics, topicsOf } from './feed.ts';

export interface ActorHooks {
  /** The actor has progress not yet saved. */
  dirty(actor: TaskActor): void;
  /** A method threw: the supervisor replaces the actor. */
  crashed(actor: TaskActor, err: unknown): void;
}

/** What the runner persists when an attempt ends. */
export interface PendingEnd {
  seq: number;
  progress: number;
  message: string | null;
}

/** A progress audit checkpoint each time progress crosses another tenth. */
const CHECKPOINTS = 10;
const MAX_MESSAGE = 10_000;

export type Transition = Exclude<TaskEventName, 'started' | 'progress' | 'retried'>;

export class TaskActor {
  readonly id: string;
  readonly owner: string;
  /** The attempt this actor runs: its signal fires on cancel, timeout and shutdown. */
  readonly attempt: AbortController;
  readonly #topics: TaskTopics;
  readonly #feed: TaskFeed;
  readonly #hooks: ActorHooks;
  #state: TaskRecord;
  /** A transition is being persisted: progress is no longer accepted. */
  #closing = false;
  #stopped = false;
  /** seq of the last snapshot written, and progress of the last audit checkpoint. */
  #savedSeq: number;
  #checkpointProgress = 0;

  constructor(state: TaskRecord, attempt: AbortController, feed: TaskFeed, hooks: ActorHooks) {
    this.id = state.task_id;
    this.owner = state.owner;
    this.attempt = attempt;
    this.#state = { ...state };
    this.#savedSeq = state.seq;
    this.#feed = feed;
    this.#hooks = hooks;
    this.#topics = topicsOf(state);
  }

  /** The state as of the last event (a copy). */
  get state(): TaskRecord {
    return { ...this.#state };
  }

  /** The public shape, for a GET or a join reply. */
  get task(): Task {
    return publicTask(this.#state);
  }

  get seq(): number {
    return this.#state.seq;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Announces `started`: the claim gave the attempt its state and seq. */
  start(): void {
    this.#guard(() => this.#publish('started', {}));
  }

  /** ctx.progress(): clamp to 0..1, never backwards within an attempt; ignored once closing. */
  progress(fraction: number, message?: string): void {
    this.#guard(() => {
      const s = this.#state;
      if (s.status !== 'running' || this.#closing || this.#stopped) return;
      const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : s.progress;
      s.progress = Math.max(f, s.progress);
      if (message !== undefined)
        s.message = typeof message === 'string' ? message.slice(0, MAX_MESSAGE) : String(message);
      s.seq += 1;
      this.#publish('progress', {});
      this.#hooks.dirty(this);
    });
  }

  /** Stops accepting progress and returns the values the attempt's end must persist. */
  beginEnd(): PendingEnd {
    this.#closing = true;
    const s = this.#state;
    return { seq: s.seq + 1, progress: s.progress, message: s.message };
  }

  /**
   * Folds a transition the runner has persisted (`record` is the row as written) and announces
   * it; `extra` goes into the event payload. The actor's work is then done.
   */
  end(name: Transition, record: TaskRecord, extra: Record<string, unknown> = {}): void {
    this.#guard(() => {
      if (this.#stopped) return;
      this.#state = { ...record };
      this.#savedSeq = record.seq;
      this.#publish(name, extra);
      this.#stopped = true;
    });
  }

  /** The snapshot to write, or null when nothing changed since the last one. */
  pendingSnapshot(): Snapshot | null {
    const s = this.#state;
    if (this.#stopped || this.#closing || s.status !== 'running' || s.seq <= this.#savedSeq) return null;
    const checkpoint =
      Math.floor(s.progress * CHECKPOINTS) > Math.floor(this.#checkpointProgress * CHECKPOINTS);
    return {
      taskId: this.id,
      attempt: s.attempt,
      seq: s.seq,
      progress: s.progress,
      message: s.message,
      checkpoint,
    };
  }

  /** The snapshot was written. */
  snapshotSaved(snapshot: Snapshot): void {
    this.#savedSeq = Math.max(this.#savedSeq, snapshot.seq);
    if (snapshot.checkpoint) this.#checkpointProgress = snapshot.progress;
  }

  /** Ends the actor without announcing anything (it crashed, or its attempt was taken away). */
  stop(): void {
    this.#stopped = true;
  }

  #publish(name: TaskEventName, extra: Record<string, unknown>): void {
    const at = Date.now();
    this.#state.updated_at = new Date(at).toISOString();
    this.#feed.event(this.#state, name, extra, this.#topics, at);
  }

  #guard(change: () => void): void {
    try {
      change();
    } catch (err) {
      this.#hooks.crashed(this, err);
    }
  }

  /** True when the task's status says it is over. */
  get done(): boolean {
    return isTerminal(this.#state.status);
  }
}
