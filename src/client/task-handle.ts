// One task as a client follows it: its latest state, folded from the join reply and the events
// in seq order (anything at or below the last applied seq is dropped, so nothing is applied
// twice or backwards), its streamed output (output.ts), listeners, and result(). It knows nothing
// of sockets: the client feeds it.
import { TaskCancelledError, TaskFailedError, TaskwireError } from './errors.ts';
import { type Accepted, type OutputChunk, type OutputCursor, OutputLog, type OutputReset } from './output.ts';
import {
  TASK_EVENT_NAMES,
  type Task,
  type TaskEventBase,
  type TaskEventName,
  type TaskEventPayloads,
  type TaskListeners,
  TERMINAL_STATUSES,
} from './types.ts';

/** How the client drives a handle (kept off the handle's public face). */
export interface TaskFeed {
  /** An event pushed on the task's topic; false when dropped as already applied. */
  event(name: string, payload: unknown): boolean;
  /** A state from a join reply (or a read); false when not newer than what is applied. */
  snapshot(task: Task): boolean;
  /** The client stopped following the task (closed or unwatched): pending result()s reject. */
  end(error: TaskwireError): void;
  /** An `output` event; 'gap' tells the client to rejoin from `outputFrom()`. */
  output(payload: unknown): Accepted;
  /** An `output_reset` event. */
  outputReset(payload: unknown): void;
  /** The join param `output_from` (re-read on every rejoin); undefined when output is not followed. */
  outputFrom(): number | undefined;
  /** True while the handle still waits for something: the task's end, or output up to it. */
  pending(): boolean;
}

/** What a handle needs from its client. */
export interface TaskLink {
  cancel(id: string): Promise<Task>;
  /** Stop following: leave the channel. Called once the task ends (and its output is in), or on unwatch(). */
  release(id: string): void;
  /** A listener threw: report it (the others still run and the state still folds). */
  listenerError(err: unknown): void;
}

type Waiter<R> = { resolve: (result: R) => void; reject: (err: Error) => void };
type AnyListener = (...args: unknown[]) => void;

export class TaskHandle<R = unknown> {
  readonly id: string;
  #state: Task<R>;
  #ended: TaskwireError | undefined;
  readonly #link: TaskLink;
  readonly #listeners = new Map<keyof TaskListeners, Set<AnyListener>>();
  readonly #waiters: Waiter<R>[] = [];
  /** The streamed output, when followed. */
  readonly #output: OutputLog | undefined;
  #released = false;

  /**
   * Created by the client; `attach` receives the feed it drives the handle with. `outputFrom`: the
   * first output index to collect, or undefined to leave the output alone.
   */
  constructor(initial: Task<R>, link: TaskLink, attach: (feed: TaskFeed) => void, outputFrom?: number) {
    this.id = initial.task_id;
    this.#state = initial;
    this.#link = link;
    if (outputFrom !== undefined) {
      this.#output = new OutputLog(outputFrom, {
        chunk: (chunk) => this.#emit('output', chunk, this.#state),
        reset: (reset) => this.#emit('output_reset', reset, this.#state),
        complete: () => {
          if (this.done) this.#release();
        },
      });
      this.#output.cursor(initial.output, initial.attempt, TERMINAL_STATUSES.has(initial.status));
    }
    attach({
      event: (name, payload) => this.#applyEvent(name, payload),
      snapshot: (task) => this.#applySnapshot(task as Task<R>),
      end: (error) => this.#end(error),
      output: (payload) => this.#applyOutput(payload),
      outputReset: (payload) => {
        const p = payload as Partial<OutputReset> | undefined;
        if (typeof p?.start === 'number') this.#output?.reset(p.start, p.attempt ?? this.#state.attempt);
      },
      outputFrom: () => this.#output?.next,
      pending: () => !this.done || (this.#output !== undefined && !this.#output.complete),
    });
  }

  /** The latest applied state (do not mutate it; each change makes a new object). */
  get state(): Readonly<Task<R>> {
    return this.#state;
  }

  get status(): Task['status'] {
    return this.#state.status;
  }

  get progress(): number {
    return this.#state.progress;
  }

  /** True once the task is completed, failed or cancelled. */
  get done(): boolean {
    return TERMINAL_STATUSES.has(this.#state.status);
  }

  /**
   * The output as it streams: each valid chunk `{kind: 'chunk', index, data, attempt}` once, in
   * index order, starting with the ones already held; `{kind: 'reset', start, attempt}` when a new
   * attempt starts the output over (clear what you showed: every chunk before it is void). Resumes
   * by index across reconnects; ends once the task has ended and its last chunk is in (whatever
   * the outcome: see result()). Throws (after yielding what it holds) when the client stops
   * following first. Each call is an independent iterator; `break` stops it.
   */
  output(opts: { signal?: AbortSignal } = {}): AsyncIterableIterator<OutputChunk | OutputReset> {
    if (!this.#output) {
      throw new TaskwireError('output_off', `task ${this.id} is followed without its output (output: false)`);
    }
    return this.#output.iterate(opts.signal) as OutputCursor;
  }

  /** The valid output so far as text: string chunks as they are, other JSON values as JSON text. */
  get text(): string {
    return this.#output?.text ?? '';
  }

  /** The valid output chunks held so far, in index order (a snapshot: a new array after each change). */
  get chunks(): readonly OutputChunk[] {
    return this.#output?.chunks ?? [];
  }

  /**
   * Where the output stands: `next` is the index to resume from (store it with the text to pick
   * up later with `watch(id, {outputFrom: next})`); `complete` once the task ended and all of its
   * output is here.
   */
  get outputPosition(): { start: number; next: number; complete: boolean } {
    const o = this.#output;
    return o
      ? { start: o.start, next: o.next, complete: o.complete }
      : { start: 0, next: 0, complete: false };
  }

  /** Listens to one event (or `update`: the state after any change). Returns the unsubscribe. */
  on<K extends keyof TaskListeners<R>>(event: K, listener: TaskListeners<R>[K]): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as AnyListener);
    return () => this.off(event, listener);
  }

  off<K extends keyof TaskListeners<R>>(event: K, listener: TaskListeners<R>[K]): void {
    this.#listeners.get(event)?.delete(listener as AnyListener);
  }

  /**
   * Resolves with the result once the task completes; rejects with TaskFailedError or
   * TaskCancelledError, or a TaskwireError when the client stops following it first.
   */
  result(): Promise<R> {
    const state = this.#state;
    if (state.status === 'completed') return Promise.resolve(state.result as R);
    if (state.status === 'failed') return Promise.reject(new TaskFailedError(state as Task));
    if (state.status === 'cancelled') return Promise.reject(new TaskCancelledError(state as Task));
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise<R>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Asks the server to cancel (202: it stops at the handler's next check). The `cancelled` event
   * follows on the channel. Throws TaskwireApiError `conflict` when the task already ended.
   */
  cancel(): Promise<Task> {
    return this.#link.cancel(this.id);
  }

  /** Stops following the task (leaves its channel). Pending result()s reject. */
  unwatch(): void {
    this.#link.release(this.id);
  }

  #applyEvent(name: string, raw: unknown): boolean {
    if (!(TASK_EVENT_NAMES as readonly string[]).includes(name)) return false;
    const payload = raw as TaskEventBase & Partial<TaskEventPayloads<R>['completed']> & { error?: unknown };
    if (!payload || typeof payload.seq !== 'number' || payload.seq <= this.#state.seq) return false;
    const event = name as TaskEventName;
    const prev = this.#state;
    this.#state = {
      ...prev,
      status: payload.status,
      progress: payload.progress,
      message: payload.message,
      attempt: payload.attempt,
      seq: payload.seq,
      updated_at: new Date(payload.at).toISOString(),
      result: event === 'completed' ? ((payload.result ?? null) as R | null) : prev.result,
      error: event === 'failed' ? ((payload.error ?? null) as Task['error']) : prev.error,
    };
    const ended = TERMINAL_STATUSES.has(this.#state.status);
    // Every chunk of an attempt comes before its end (api.md): the output ends where it stands,
    // before the listeners hear of the end (so they see `outputPosition.complete` with it).
    if (ended) this.#output?.endHere();
    this.#emit(event, payload, this.#state);
    this.#emit('update', this.#state);
    if (ended) this.#finish();
    return true;
  }

  #applyOutput(raw: unknown): Accepted {
    const p = raw as Partial<OutputChunk> | undefined;
    if (!this.#output || typeof p?.index !== 'number') return 'void';
    return this.#output.accept(p.index, p.data, p.attempt ?? this.#state.attempt);
  }

  #applySnapshot(task: Task<R>): boolean {
    if (!task || typeof task.seq !== 'number') return false;
    // The output cursor counts whatever the seq: a rejoin's reply says where the output stands.
    this.#output?.cursor(task.output, task.attempt, TERMINAL_STATUSES.has(task.status));
    if (task.seq <= this.#state.seq) return false;
    const wasTerminal = TERMINAL_STATUSES.has(this.#state.status);
    this.#state = task;
    this.#emit('update', task);
    if (!wasTerminal && TERMINAL_STATUSES.has(task.status)) {
      // The task ended while we were away (a reconnect): its terminal event is not replayed, so
      // the listeners hear one made from the state.
      const base: TaskEventBase = {
        task_id: task.task_id,
        type: task.type,
        status: task.status,
        progress: task.progress,
        message: task.message,
        seq: task.seq,
        attempt: task.attempt,
        at: Date.parse(task.updated_at),
      };
      const extra =
        task.status === 'completed'
          ? { result: task.result }
          : task.status === 'failed'
            ? { error: task.error }
            : {};
      this.#emit(task.status as TaskEventName, { ...base, ...extra }, task);
      this.#finish();
    }
    return true;
  }

  #finish(): void {
    const waiters = this.#waiters.splice(0);
    const state = this.#state;
    for (const w of waiters) {
      if (state.status === 'completed') w.resolve(state.result as R);
      else if (state.status === 'failed') w.reject(new TaskFailedError(state as Task));
      else w.reject(new TaskCancelledError(state as Task));
    }
    // A state learned on a rejoin may end the task before its last chunks (sent after the reply)
    // are in: the channel stays until they are.
    if (!this.#output || this.#output.complete) this.#release();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#link.release(this.id);
  }

  #end(error: TaskwireError): void {
    this.#released = true;
    this.#output?.fail(error);
    if (this.#ended || this.done) return;
    this.#ended = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
  }

  #emit(event: keyof TaskListeners, ...args: unknown[]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        this.#link.listenerError(err);
      }
    }
  }
}
