// One followed task as an external store for React's useSyncExternalStore: it watches the task
// through the SDK (with its output from index 0, so a reloaded page gets the whole text again
// from the server), keeps one immutable view, rebuilt at most once per `throttleMs` however fast
// chunks come, and leaves the task's channel when the last component using it unmounts. No React
// here: index.ts binds it.
import {
  type OutputChunk,
  type Task,
  TaskFailedError,
  type TaskHandle,
  type TaskStatus,
  type TaskwireClient,
  TaskwireError,
} from '../client/index.ts';

/** What `useTask(id)` returns: a snapshot, replaced (never mutated) when anything changes. */
export interface TaskView<R = unknown> {
  /** The latest state of the task; null until the first answer. */
  state: Readonly<Task<R>> | null;
  status: TaskStatus | null;
  /** 0..1 (0 until known). */
  progress: number;
  message: string | null;
  /** The streamed output so far as text; after a reset (a retry starting over), the new attempt's only. */
  output: string;
  /** The valid output chunks, in index order (their `data` as the handler gave it). */
  chunks: readonly OutputChunk[];
  /** The result once completed, else null. */
  result: R | null;
  /**
   * Why the task cannot be followed (`not_found`, `unreachable`, `unauthorized`...), or a
   * TaskFailedError once it failed (its `.task.error` is the task's error). Else null.
   */
  error: TaskwireError | null;
  /** True until the first state arrives (false for no id, or on an error). */
  loading: boolean;
  /** The task ended (completed, failed or cancelled). */
  done: boolean;
  /** The task ended and its whole output is here: nothing more will change. */
  outputDone: boolean;
  /** The SDK handle (for `cancel()`, `on(...)`), once known. */
  handle: TaskHandle<R> | null;
}

const BLANK: TaskView<unknown> = Object.freeze({
  state: null,
  status: null,
  progress: 0,
  message: null,
  output: '',
  chunks: Object.freeze([]) as readonly OutputChunk[],
  result: null,
  error: null,
  loading: false,
  done: false,
  outputDone: false,
  handle: null,
});

const LOADING_VIEW: TaskView<unknown> = Object.freeze({ ...BLANK, loading: true });

/** The view for no task at all (`useTask(null)`). */
export function noTaskView<R>(): TaskView<R> {
  return BLANK as TaskView<R>;
}

/** The view before anything is known (also what server rendering shows). */
export function loadingView<R>(): TaskView<R> {
  return LOADING_VIEW as TaskView<R>;
}

export interface TaskStoreOptions {
  /** At most one new view per this many ms while chunks stream (default 16; 0: every change). */
  throttleMs?: number;
}

export class TaskStore<R = unknown> {
  readonly #client: TaskwireClient;
  readonly #id: string;
  readonly #throttleMs: number;
  readonly #forget: () => void;
  readonly #listeners = new Set<() => void>();
  #view: TaskView<R> = loadingView<R>();
  #handle: TaskHandle<R> | undefined;
  /** The store made the handle (so it unwatches it), rather than finding one the app made. */
  #owned = false;
  #error: TaskwireError | null = null;
  #started = false;
  #stopped = false;
  #unlisten: (() => void)[] = [];
  #lastNotify = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #releaseTimer: ReturnType<typeof setTimeout> | undefined;

  /** `forget` is called once the store is done with (its registry drops it). */
  constructor(client: TaskwireClient, id: string, opts: TaskStoreOptions, forget: () => void) {
    this.#client = client;
    this.#id = id;
    this.#throttleMs = opts.throttleMs ?? 16;
    this.#forget = forget;
  }

  /** For useSyncExternalStore: starts following on the first listener, stops after the last. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    clearTimeout(this.#releaseTimer);
    if (!this.#started) this.#start();
    return () => {
      this.#listeners.delete(listener);
      // Not at once: StrictMode (and a quick remount) subscribes again right away.
      if (this.#listeners.size === 0) this.#releaseTimer = setTimeout(() => this.#releaseIfUnused(), 0);
    };
  };

  readonly getSnapshot = (): TaskView<R> => this.#view;

  get stopped(): boolean {
    return this.#stopped;
  }

  #start(): void {
    this.#started = true;
    const existing = this.#client.handle<R>(this.#id);
    if (existing) {
      this.#attach(existing, false);
      return;
    }
    this.#client.watch<R>(this.#id).then(
      (handle) => {
        if (this.#stopped) {
          if (this.#client.handle(this.#id) === handle) handle.unwatch();
          return;
        }
        this.#attach(handle, true);
      },
      (err: unknown) => {
        this.#error =
          err instanceof TaskwireError
            ? err
            : new TaskwireError('unexpected', err instanceof Error ? err.message : String(err));
        this.#notify();
      },
    );
  }

  #attach(handle: TaskHandle<R>, owned: boolean): void {
    this.#handle = handle;
    this.#owned = owned;
    const changed = () => this.#changed();
    this.#unlisten = [
      handle.on('update', changed),
      handle.on('output', changed),
      handle.on('output_reset', changed),
    ];
    this.#notify();
  }

  /** A change: a new view now, or at the end of the current throttle window. */
  #changed(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#notifyWhenDue();
  }

  /** A busy event loop may fire a timer a little early: the window is measured again each time. */
  #notifyWhenDue(): void {
    const wait = this.#lastNotify + this.#throttleMs - Date.now();
    if (wait <= 0) {
      this.#notify();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#notifyWhenDue();
    }, wait);
  }

  #notify(): void {
    if (this.#stopped) return;
    this.#view = this.#build();
    this.#lastNotify = Date.now(); // the window starts when the listeners hear of it
    for (const listener of [...this.#listeners]) listener();
  }

  #build(): TaskView<R> {
    const h = this.#handle;
    if (!h) return this.#error ? { ...noTaskView<R>(), error: this.#error } : loadingView<R>();
    const state = h.state;
    const position = h.outputPosition;
    return {
      state,
      status: state.status,
      progress: state.progress,
      message: state.message,
      output: h.text,
      chunks: h.chunks,
      result: state.status === 'completed' ? (state.result as R) : null,
      error: this.#error ?? (state.status === 'failed' ? new TaskFailedError(state as Task) : null),
      loading: false,
      done: h.done,
      outputDone: h.done && position.complete,
      handle: h,
    };
  }

  #releaseIfUnused(): void {
    if (this.#listeners.size > 0 || this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const off of this.#unlisten) off();
    const h = this.#handle;
    if (h && this.#owned && this.#client.handle(this.#id) === h) h.unwatch();
    this.#forget();
  }
}

const registries = new WeakMap<TaskwireClient, Map<string, TaskStore<unknown>>>();

/** The store of task `id` on `client`: one per pair while in use, shared by every component. */
export function taskStore<R = unknown>(
  client: TaskwireClient,
  id: string,
  opts: TaskStoreOptions = {},
): TaskStore<R> {
  let stores = registries.get(client);
  if (!stores) {
    stores = new Map();
    registries.set(client, stores);
  }
  const found = stores.get(id);
  if (found && !found.stopped) return found as TaskStore<R>;
  const registry = stores;
  const store: TaskStore<unknown> = new TaskStore(client, id, opts, () => {
    if (registry.get(id) === store) registry.delete(id);
  });
  registry.set(id, store);
  return store as TaskStore<R>;
}
