// A task's streamed output as one client holds it (api.md "Streamed output"): the valid chunks in
// index order, the text they make, where to resume (`next`, the join's `output_from`), resets (a
// new attempt voids every chunk below its `start`), the end (the task ended and its last chunk is
// in), and async iterators over all of it. It knows nothing of sockets: the task handle feeds it.
import { TaskwireError } from './errors.ts';

/** One chunk of output: `data` is what the handler passed to `ctx.output` (a string or JSON). */
export interface OutputChunk<T = unknown> {
  kind: 'chunk';
  index: number;
  data: T;
  attempt: number;
}

/**
 * A new attempt starts the output over: every chunk below `start` is void, so a consumer clears
 * what it showed and goes on with the chunks that follow.
 */
export interface OutputReset {
  kind: 'reset';
  start: number;
  attempt: number;
}

/** What `task.output()` yields. */
export type OutputItem<T = unknown> = OutputChunk<T> | OutputReset;

/** What a chunk adds to `task.text`: a string as it is, any other JSON value as its JSON text. */
export function chunkText(data: unknown): string {
  return typeof data === 'string' ? data : JSON.stringify(data);
}

/** What the log tells its owner (the handle turns these into `output` / `output_reset` events). */
export interface OutputSink {
  chunk(chunk: OutputChunk): void;
  reset(reset: OutputReset): void;
  /** The task ended and every chunk up to its end is in. */
  complete(): void;
}

/** What `accept` made of an output event. */
export type Accepted = 'applied' | 'duplicate' | 'void' | 'gap';

export class OutputLog {
  /** True while the consumer holds output of its own below `from` (it resumed from a stored index). */
  #holdsOwn: boolean;
  readonly #from: number;
  /** Chunks below `start` are void (the latest reset known). */
  #start = 0;
  /** The index of the next chunk to apply: what a (re)join asks for. */
  #next: number;
  #chunks: OutputChunk[] = [];
  /** What `chunks` last handed out, until the next change. */
  #chunksView: readonly OutputChunk[] | undefined;
  #text = '';
  /** Where the output ends, once the task has ended. */
  #end: number | undefined;
  #completed = false;
  /** Set when the client stopped following before the output was complete. */
  #failed: TaskwireError | undefined;
  readonly #cursors = new Set<OutputCursor>();
  readonly #sink: OutputSink;

  /** `from`: the first index wanted (the consumer already holds what lies below it). */
  constructor(from: number, sink: OutputSink) {
    this.#from = from;
    this.#holdsOwn = from > 0;
    this.#next = from;
    this.#sink = sink;
  }

  /** The `output_from` of the next (re)join: exactly what is missing. */
  get next(): number {
    return this.#next;
  }

  get start(): number {
    return this.#start;
  }

  /** The valid chunks held, in index order: a snapshot (a new array after each change). */
  get chunks(): readonly OutputChunk[] {
    this.#chunksView ??= Object.freeze(this.#chunks.slice());
    return this.#chunksView;
  }

  /** The valid output as text (strings as they are, other JSON values as JSON text). */
  get text(): string {
    return this.#text;
  }

  /** True once the task has ended and its whole output is here. */
  get complete(): boolean {
    return this.#completed;
  }

  /** A task state (a join reply, or a read): its output cursor; `ended` when the task is terminal. */
  cursor(output: { start: number; next: number } | undefined, attempt: number, ended: boolean): void {
    if (!output) return;
    this.#learnStart(output.start, attempt);
    if (ended) this.#endAt(output.next);
  }

  /** The task's terminal event arrived: every chunk of its attempt came before it (api.md). */
  endHere(): void {
    this.#endAt(this.#next);
  }

  /** An `output` event. Duplicates (a resend after a rejoin) and void chunks are dropped. */
  accept(index: number, data: unknown, attempt: number): Accepted {
    if (index < this.#start) return 'void';
    if (index < this.#next) return 'duplicate';
    if (index > this.#next) return 'gap';
    const chunk: OutputChunk = { kind: 'chunk', index, data, attempt };
    this.#chunks.push(chunk);
    this.#chunksView = undefined;
    this.#text += chunkText(data);
    this.#next = index + 1;
    for (const c of this.#cursors) c.push(chunk);
    // Complete (if this was the last chunk) before the sink hears of the chunk, so that a listener
    // of the last chunk sees the output complete.
    this.#checkComplete();
    this.#sink.chunk(chunk);
    return 'applied';
  }

  /** An `output_reset` event. */
  reset(start: number, attempt: number): void {
    this.#learnStart(start, attempt);
  }

  /** The client stopped following: iterators still yield what they hold, then throw `error`. */
  fail(error: TaskwireError): void {
    if (this.#completed || this.#failed) return;
    this.#failed = error;
    for (const c of this.#cursors) c.finish(error);
    this.#cursors.clear();
  }

  /** An iterator from the first valid chunk held, then each new one, until the output ends. */
  iterate(signal?: AbortSignal): OutputCursor {
    const cursor = new OutputCursor(this.#chunks, (c) => this.#cursors.delete(c), signal);
    if (this.#completed) cursor.finish();
    else if (this.#failed) cursor.finish(this.#failed);
    else this.#cursors.add(cursor);
    return cursor;
  }

  #learnStart(start: number, attempt: number): void {
    if (!Number.isSafeInteger(start) || start <= this.#start) return;
    // What the consumer holds below `start` is void: chunks of ours, or (when it resumed from a
    // stored index) its own, which lie below `from` and are all void once `start` reaches it.
    const voids =
      (this.#chunks.length > 0 && this.#chunks[0].index < start) || (this.#holdsOwn && start >= this.#from);
    this.#start = start;
    if (this.#next < start) this.#next = start;
    if (!voids) return;
    this.#holdsOwn = false;
    this.#chunks = this.#chunks.filter((c) => c.index >= start);
    this.#chunksView = undefined;
    this.#text = this.#chunks.map((c) => chunkText(c.data)).join('');
    const reset: OutputReset = { kind: 'reset', start, attempt };
    for (const c of this.#cursors) c.reset(reset);
    this.#sink.reset(reset);
  }

  #endAt(end: number): void {
    if (this.#end === undefined || end > this.#end) this.#end = end;
    this.#checkComplete();
  }

  #checkComplete(): void {
    if (this.#completed || this.#end === undefined || this.#next < this.#end) return;
    this.#completed = true;
    for (const c of this.#cursors) c.finish();
    this.#cursors.clear();
    this.#sink.complete();
  }
}

type Waiter = {
  resolve: (r: IteratorResult<OutputItem>) => void;
  reject: (e: unknown) => void;
};

/** One `task.output()` iterator: its own queue, so a slow consumer holds up no one else. */
export class OutputCursor implements AsyncIterableIterator<OutputItem> {
  #queue: OutputItem[];
  #head = 0;
  #waiter: Waiter | undefined;
  /** Set once no more items will be queued: `null` for a normal end, else the error to throw. */
  #end: TaskwireError | null | undefined;
  #closed = false;
  #aborted: { reason: unknown } | undefined;
  readonly #detach: (c: OutputCursor) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.#abort();

  constructor(held: readonly OutputItem[], detach: (c: OutputCursor) => void, signal?: AbortSignal) {
    this.#queue = [...held];
    this.#detach = detach;
    this.#signal = signal;
    if (signal?.aborted) queueMicrotask(this.#onAbort);
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  push(item: OutputItem): void {
    if (this.#closed) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve({ value: item, done: false });
    } else this.#queue.push(item);
  }

  /** Drops the queued chunks the reset voids (never shown), then queues the reset itself. */
  reset(reset: OutputReset): void {
    if (this.#closed) return;
    const pending = this.#queue.slice(this.#head).filter((i) => i.kind !== 'chunk' || i.index >= reset.start);
    this.#queue = pending;
    this.#head = 0;
    this.push(reset);
  }

  /** No more items: the queue drains, then the iterator ends (or throws `error`). */
  finish(error?: TaskwireError): void {
    if (this.#end !== undefined) return;
    this.#end = error ?? null;
    if (this.#waiter && this.#head >= this.#queue.length) this.#settleEnd(this.#waiter);
  }

  next(): Promise<IteratorResult<OutputItem>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head++];
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#aborted) return Promise.reject(this.#aborted.reason);
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter)
      return Promise.reject(new TypeError('output(): next() called before the last one settled'));
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this.#end !== undefined) this.#settleEnd(waiter);
      else this.#waiter = waiter;
    });
  }

  /** `break` in a for-await loop lands here: the iterator stops and lets go of its queue. */
  return(): Promise<IteratorResult<OutputItem>> {
    this.#close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #settleEnd(w: Waiter): void {
    this.#waiter = undefined;
    const error = this.#end;
    this.#close();
    if (error) w.reject(error);
    else w.resolve({ value: undefined, done: true });
  }

  /** An aborted iterator drops what it holds and rejects its pending and later next() calls. */
  #abort(): void {
    if (this.#closed) return;
    const reason: unknown = this.#signal?.reason ?? new TaskwireError('aborted', 'output(): aborted');
    const w = this.#waiter;
    this.#close();
    this.#aborted = { reason };
    if (w) w.reject(reason);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter = undefined;
    this.#queue = [];
    this.#head = 0;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#detach(this);
  }
}
