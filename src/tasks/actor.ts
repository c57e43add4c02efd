// TaskActor: the live state of one task while an attempt of it runs on this node (the GenServer of
// the seed). Only its own methods change its state; each change runs to completion synchronously
// (no await inside), bumps seq, folds the event into the state and publishes it through the feed.
// No database on this path: the snapshotter persists in the background, and a transition
// (completed, failed, cancelled, retrying) is folded in only after the runner has persisted it.

import type { TaskEventName } from '../contract/index.ts';
import { storableString, toStorable } from '../contract/storable.ts';
import type { OutputChunk, OutputSegment, Snapshot } from '../db/index.ts';
import { isTerminal, publicTask, type Task, type TaskRecord } from '../db/index.ts';
import { OutputLimitError } from './errors.ts';
import { type TaskFeed, type TaskTopics, topicsOf } from './feed.ts';

export interface ActorHooks {
  /** The actor has progress not yet saved. */
  dirty(actor: TaskActor): void;
  /** The actor has output not yet saved. */
  outputDirty(actor: TaskActor): void;
  /** A method threw: the supervisor replaces the actor. */
  crashed(actor: TaskActor, err: unknown): void;
}

/** Bounds on a task's streamed output (configurable: README "Configuration"). */
export interface OutputLimits {
  /** Bytes of one chunk as JSON. */
  chunkBytes: number;
  /** Chunks of the current attempt's output. */
  maxChunks: number;
  /** Bytes of the current attempt's output. */
  maxBytes: number;
}

/** Output not yet saved, and where saving stands: the actor's half of the write-behind. */
export interface PendingOutput {
  /** Chunks from `durable` on, in index order; the first `inFlight` are being written. */
  chunks: Array<OutputChunk & { bytes: number }>;
  /** Every index below this is stored. */
  durable: number;
  inFlight: number;
  /** Bytes since the output's start (this attempt's). */
  bytes: number;
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
  readonly #limits: OutputLimits;
  #out: PendingOutput;

  constructor(
    state: TaskRecord,
    attempt: AbortController,
    feed: TaskFeed,
    hooks: ActorHooks,
    limits: OutputLimits,
    /** Output carried over from an actor of the same attempt that crashed. */
    carried?: PendingOutput,
  ) {
    this.id = state.task_id;
    this.owner = state.owner;
    this.attempt = attempt;
    this.#state = { ...state, output: { ...state.output } };
    this.#savedSeq = state.seq;
    this.#feed = feed;
    this.#hooks = hooks;
    this.#topics = topicsOf(state);
    this.#limits = limits;
    this.#out = carried
      ? { ...carried, chunks: [...carried.chunks], inFlight: 0 }
      : { chunks: [], durable: state.output.next, inFlight: 0, bytes: 0 };
    if (carried) {
      const last = carried.chunks.at(-1);
      if (last) this.#state.output.next = Math.max(this.#state.output.next, last.index + 1);
    }
  }

  /** The state as of the last event (a copy). */
  get state(): TaskRecord {
    return { ...this.#state, output: { ...this.#state.output } };
  }

  /** The public shape, for a GET or a join reply. */
  get task(): Task {
    return publicTask(this.state);
  }

  get seq(): number {
    return this.#state.seq;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Announces `started` (the claim gave the attempt its state and seq), and `output_reset` when
   * this attempt starts the task's output over.
   */
  start(outputReset = false): void {
    this.#guard(() => {
      this.#publish('started', {});
      if (outputReset) this.#feed.outputReset(this.#state, this.#topics);
    });
  }

  /**
   * ctx.output(): numbers the chunk, publishes it and queues it for the writer. The value is made
   * storable first (what subscribers see is what is kept). Throws OutputLimitError past a limit,
   * TypeError for a value JSON can't hold; returns the index, or -1 once the attempt is ending.
   */
  output(data: unknown): number {
    const s = this.#state;
    if (s.status !== 'running' || this.#closing || this.#stopped) return -1;
    const stored = toStorable(data === undefined ? null : data);
    const json = JSON.stringify(stored);
    if (json === undefined) throw new TypeError('an output chunk must be a JSON value');
    const bytes = Buffer.byteLength(json);
    const l = this.#limits;
    if (bytes > l.chunkBytes)
      throw new OutputLimitError(
        `an output chunk of ${bytes} bytes is over TASKWIRE_OUTPUT_CHUNK_BYTES (${l.chunkBytes})`,
      );
    if (s.output.next - s.output.start + 1 > l.maxChunks)
      throw new OutputLimitError(`the output is over TASKWIRE_OUTPUT_MAX_CHUNKS (${l.maxChunks} chunks)`);
    if (this.#out.bytes + bytes > l.maxBytes)
      throw new OutputLimitError(`the output is over TASKWIRE_OUTPUT_MAX_BYTES (${l.maxBytes} bytes)`);
    // A copy, so a handler that changes its object afterwards changes neither what was sent nor what is kept.
    const value = typeof stored === 'object' && stored !== null ? JSON.parse(json) : stored;
    let index = -1;
    this.#guard(() => {
      index = s.output.next;
      s.output.next += 1;
      this.#out.chunks.push({ index, data: value, attempt: s.attempt, bytes });
      this.#out.bytes += bytes;
      this.#feed.output(s, index, value, this.#topics);
      this.#hooks.outputDirty(this);
    });
    return index;
  }

  /** ctx.progress(): clamp to 0..1, never backwards within an attempt; ignored once closing. */
  progress(fraction: number, message?: string): void {
    this.#guard(() => {
      const s = this.#state;
      if (s.status !== 'running' || this.#closing || this.#stopped) return;
      const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : s.progress;
      s.progress = Math.max(f, s.progress);
      if (message !== undefined)
        s.message = storableString(
          typeof message === 'string' ? message.slice(0, MAX_MESSAGE) : String(message),
        );
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
      this.#state = { ...record, output: { ...record.output } };
      this.#savedSeq = record.seq;
      this.#publish(name, extra);
      this.#stopped = true;
    });
  }

  // ---- output write-behind (the writer's side) ----

  get hasPendingOutput(): boolean {
    return this.#out.chunks.length > 0;
  }

  /** The chunks not yet handed to the writer, as segments of at most `maxChunks`; marks them in flight. */
  takeOutput(maxChunks: number): OutputSegment[] {
    const out = this.#out;
    const segments: OutputSegment[] = [];
    while (out.inFlight < out.chunks.length) {
      const part = out.chunks.slice(out.inFlight, out.inFlight + maxChunks);
      out.inFlight += part.length;
      segments.push({
        taskId: this.id,
        attempt: part[0].attempt,
        first: part[0].index,
        chunks: part.map((c) => c.data),
        bytes: part.reduce((sum, c) => sum + c.bytes, 0),
      });
    }
    return segments;
  }

  /** Every chunk below `upTo` is stored: memory lets them go. */
  outputSaved(upTo: number): void {
    const out = this.#out;
    let n = 0;
    while (n < out.chunks.length && out.chunks[n].index < upTo) n++;
    out.chunks.splice(0, n);
    out.inFlight = Math.max(0, out.inFlight - n);
    out.durable = Math.max(out.durable, upTo);
  }

  /** A write failed: the chunks in flight are pending again (the next flush retries them). */
  outputUnsent(): void {
    this.#out.inFlight = 0;
  }

  /** Where saving stands, and the chunks from `from` that only memory holds (for a resume). */
  outputSince(from: number): { durable: number; chunks: OutputChunk[] } {
    const out = this.#out;
    const chunks: OutputChunk[] = [];
    for (const c of out.chunks)
      if (c.index >= from) chunks.push({ index: c.index, data: c.data, attempt: c.attempt });
    return { durable: out.durable, chunks };
  }

  /** The output not yet saved (for a replacement actor of the same attempt). */
  pendingOutput(): PendingOutput {
    return { ...this.#out, chunks: [...this.#out.chunks] };
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
