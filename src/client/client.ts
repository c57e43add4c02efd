// The client: REST calls plus ONE phoenix Socket shared by every task it follows, one channel
// `task:<id>` per task. phoenix reconnects the socket and rejoins the channels; each rejoin's
// reply carries the task's current state, which the handle folds in by seq, and each rejoin's
// params (a function) ask for the output from the handle's next index, so none is missed or
// repeated.
import { type Channel, LongPoll, type Push, Socket, type SocketConnectOption } from 'phoenix';
import { TaskwireApiError, TaskwireConnectionError, TaskwireError } from './errors.ts';
import { Rest } from './http.ts';
import { type TaskFeed, TaskHandle } from './task-handle.ts';
import {
  type FollowOptions,
  type ListOptions,
  type SubmitOptions,
  TASK_EVENT_NAMES,
  type Task,
  type TaskAuditEvent,
  type TaskPage,
} from './types.ts';

export interface ClientOptions {
  /** The server's HTTP base, e.g. `http://127.0.0.1:4000`. The socket URL is derived from it. */
  url: string;
  /**
   * A JWT whose `sub` is the user (`npx taskwire token --user alice`). A function is called for
   * every request and every (re)connect, so a refreshed token is picked up.
   */
  token: string | (() => string);
  /** Override the socket endpoint (default: the url with ws(s): and `/socket`). */
  socketUrl?: string;
  /** Bound on each HTTP request and on the first join of a task (default 15 s). */
  timeoutMs?: number;
  /** Use phoenix's LongPoll transport instead of WebSocket. */
  longPoll?: boolean;
  /** Passed to phoenix's Socket as they are (reconnectAfterMs, logger, heartbeatIntervalMs...). */
  socketOptions?: Partial<SocketConnectOption>;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /**
   * Called when a `task.on` listener throws (the other listeners still run). Default: rethrown
   * on its own tick, like an uncaught error in an event handler.
   */
  onListenerError?: (err: unknown) => void;
}

/**
 * The body of a submit: `type` picks the task type, every other field is the task's input, except
 * the reserved options (`max_attempts`, `priority`, `run_at`, `delay_ms`; see SubmitOptions too).
 */
export type SubmitBody = {
  type?: string;
  max_attempts?: number;
  priority?: number;
  run_at?: string;
  delay_ms?: number;
} & Record<string, unknown>;

interface Followed {
  handle: TaskHandle<unknown>;
  feed: TaskFeed;
  channel: Channel | undefined;
  /** Settles a first join still in flight when the task is released. */
  abortJoin: ((error?: TaskwireError) => void) | undefined;
}

export class TaskwireClient {
  readonly url: string;
  readonly socketUrl: string;
  readonly #rest: Rest;
  readonly #o: ClientOptions;
  readonly #timeoutMs: number;
  readonly #followed = new Map<string, Followed>();
  #socket: Socket | undefined;
  #closed = false;

  constructor(opts: ClientOptions) {
    if (!opts.url) throw new TypeError('createClient: url is required');
    if (!opts.token) throw new TypeError('createClient: token is required');
    this.#o = opts;
    this.url = opts.url.replace(/\/+$/, '');
    this.socketUrl = opts.socketUrl ?? `${this.url.replace(/^http/i, 'ws')}/socket`;
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
    this.#rest = new Rest({
      baseUrl: this.url,
      token: opts.token,
      timeoutMs: this.#timeoutMs,
      fetch: opts.fetch ?? ((...args) => globalThis.fetch(...args)),
    });
  }

  /**
   * Creates a task and follows it (with its output, unless `output: false`). Resolves once its
   * channel is joined (or it already ended).
   */
  async submit<R = unknown>(body: SubmitBody, opts: SubmitOptions = {}): Promise<TaskHandle<R>> {
    this.#assertOpen();
    const outputFrom = followFrom(opts);
    const task = await this.#rest.submit(body, opts);
    return this.#follow<R>(task, outputFrom);
  }

  /** Creates a task without following it (one HTTP request, no socket): its state as created. */
  create(body: SubmitBody, opts: SubmitOptions = {}): Promise<Task> {
    this.#assertOpen();
    return this.#rest.submit(body, opts);
  }

  /**
   * Follows an existing task of the caller, with its output from `outputFrom` (default 0) unless
   * `output: false`. A task already followed gives the same handle (its options stay). A finished
   * task's output is fetched through its channel, which is left once it is all in. Rejects with
   * `not_found` for unknown or foreign ids.
   */
  async watch<R = unknown>(taskId: string, opts: FollowOptions = {}): Promise<TaskHandle<R>> {
    this.#assertOpen();
    const outputFrom = followFrom(opts);
    const existing = this.#followed.get(taskId);
    if (existing) return existing.handle as TaskHandle<R>;
    return this.#follow<R>(await this.#rest.get(taskId), outputFrom);
  }

  /** The handle of a task this client follows now (one not yet ended or unwatched), if any. */
  handle<R = unknown>(taskId: string): TaskHandle<R> | undefined {
    return this.#followed.get(taskId)?.handle as TaskHandle<R> | undefined;
  }

  /** The task's current state (one HTTP read; no socket). */
  get(taskId: string): Promise<Task> {
    return this.#rest.get(taskId);
  }

  /** The caller's tasks, newest first; pass `next_cursor` back as `cursor` for the next page. */
  list(opts: ListOptions = {}): Promise<TaskPage> {
    return this.#rest.list(opts);
  }

  /** Requests cancellation (202 task); `conflict` when already ended, `not_found` when unknown. */
  cancel(taskId: string): Promise<Task> {
    return this.#rest.cancel(taskId);
  }

  /**
   * Starts a new series of attempts of a failed or cancelled task (202 task, queued again);
   * `conflict` for any other status, `not_found` when unknown.
   */
  retry(taskId: string): Promise<Task> {
    return this.#rest.retry(taskId);
  }

  /** The task's audit trail, oldest first. */
  events(taskId: string): Promise<TaskAuditEvent[]> {
    return this.#rest.events(taskId);
  }

  /** Leaves every channel and closes the socket; pending result()s reject with `closed`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new TaskwireError('closed', 'the client was closed');
    for (const id of [...this.#followed.keys()]) this.#release(id, error);
    this.#socket?.disconnect();
    this.#socket = undefined;
  }

  /** The shared phoenix Socket (created on first use); for diagnostics and tests. */
  get socket(): Socket | undefined {
    return this.#socket;
  }

  async #follow<R>(task: Task, outputFrom: number | undefined): Promise<TaskHandle<R>> {
    const existing = this.#followed.get(task.task_id);
    if (existing) {
      existing.feed.snapshot(task);
      return existing.handle as TaskHandle<R>;
    }
    let feed!: TaskFeed;
    const handle = new TaskHandle<R>(
      task as Task<R>,
      {
        cancel: (id) => this.cancel(id),
        release: (id) => this.#release(id),
        listenerError: this.#o.onListenerError ?? rethrowLater,
      },
      (f) => {
        feed = f;
      },
      outputFrom,
    );
    // Ended, with all of its output (if followed) in hand: nothing more will happen.
    if (!feed.pending()) return handle;
    const followed: Followed = {
      handle: handle as TaskHandle<unknown>,
      feed,
      channel: undefined,
      abortJoin: undefined,
    };
    this.#followed.set(task.task_id, followed);
    await this.#join(followed);
    return handle;
  }

  /**
   * Opens the task's channel: its events feed the handle, and its join params are re-read on every
   * (re)join, so each asks for the output from the handle's next index. Returns the join push.
   */
  #open(followed: Followed): Push {
    const id = followed.handle.id;
    const { feed } = followed;
    const channel = this.#connect().channel(`task:${id}`, () => {
      const from = feed.outputFrom();
      return from === undefined ? {} : { output_from: from };
    });
    followed.channel = channel;
    /** Frames of a channel this task has moved off (a resync) are not its news any more. */
    const current = () => followed.channel === channel;
    for (const name of TASK_EVENT_NAMES)
      channel.on(name, (payload) => {
        if (current()) feed.event(name, payload);
      });
    if (feed.outputFrom() !== undefined) {
      channel.on('output', (payload) => {
        if (current() && feed.output(payload) === 'gap') this.#resync(followed);
      });
      channel.on('output_reset', (payload) => {
        if (current()) feed.outputReset(payload);
      });
    }
    return (
      channel
        .join(this.#timeoutMs)
        // Every rejoin (after a reconnect) lands here too: its state is the catch-up.
        .receive('ok', (response?: { task?: Task }) => {
          followed.abortJoin?.(); // settled first: a state that ends the task must not fail the join
          if (current() && response?.task) feed.snapshot(response.task);
        })
        .receive('error', () => {
          // Unknown and foreign ids get the same answer (api.md), so it is a not_found.
          if (!current()) return;
          this.#release(
            id,
            new TaskwireApiError(404, { code: 'not_found', message: `no task ${id} (or not yours)` }),
          );
        })
    );
  }

  /** The first join of a task: resolves on its ok reply, rejects when refused or not answered. */
  #join(followed: Followed): Promise<void> {
    const id = followed.handle.id;
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      followed.abortJoin = (error?: TaskwireError) => {
        followed.abortJoin = undefined;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      timer = setTimeout(() => {
        const error = this.#socket?.isConnected()
          ? new TaskwireError('timeout', `joining task:${id} got no answer in ${this.#timeoutMs} ms`)
          : new TaskwireConnectionError(this.socketUrl, 'the socket did not open; is the token valid?');
        this.#release(id, error);
      }, this.#timeoutMs);
      this.#open(followed);
    });
  }

  /**
   * A chunk arrived past a gap (the server never sends one: this is a guard): leave the channel and
   * join again, asking for the output from the last index applied.
   */
  #resync(followed: Followed): void {
    if (this.#followed.get(followed.handle.id) !== followed) return;
    followed.channel?.leave();
    this.#open(followed);
  }

  #release(id: string, error?: TaskwireError): void {
    const followed = this.#followed.get(id);
    if (!followed) return;
    this.#followed.delete(id);
    followed.channel?.leave();
    const reason = error ?? new TaskwireError('unwatched', `task ${id} is no longer watched`);
    followed.abortJoin?.(reason);
    followed.feed.end(reason);
  }

  #connect(): Socket {
    if (this.#socket) return this.#socket;
    const { socketOptions = {}, longPoll } = this.#o;
    const token = this.#o.token;
    const socket = new Socket(this.socketUrl, {
      ...socketOptions,
      ...(longPoll ? { transport: LongPoll } : {}),
      params: typeof token === 'function' ? () => ({ token: token() }) : { token },
    });
    socket.connect();
    this.#socket = socket;
    return socket;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TaskwireError('closed', 'the client was closed');
  }
}

/** The first output index a follow asks for, or undefined when the output is not wanted. */
function followFrom(opts: FollowOptions): number | undefined {
  if (opts.output === false) return undefined;
  const from = opts.outputFrom ?? 0;
  if (!Number.isSafeInteger(from) || from < 0) throw new TypeError('outputFrom must be an integer >= 0');
  return from;
}

function rethrowLater(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}

/** `const tw = createClient({ url, token })`: the client's entry point. */
export function createClient(opts: ClientOptions): TaskwireClient {
  return new TaskwireClient(opts);
}
