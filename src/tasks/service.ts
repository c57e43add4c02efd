// TaskService: the tasks part's public face for http and channels. Creating a task writes the
// row, its `created` event and its job in ONE transaction; reads take the live state wherever the
// task runs (this node's actor, else the node named by the row, else the row); a join subscribes
// to the topic first and reads the state after, so no event falls between the two; a cancel
// reaches the attempt on whichever node runs it; a retry starts a new series of attempts of a task
// that failed or was cancelled, in one statement (the row, its `retried` event and its job).
import type pg from 'pg';
import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import type { PubSub, TopicSubscriber } from '../bus/index.ts';
import { ADMIN_TOPIC, taskTopic, userTopic } from '../contract/index.ts';
import {
  cancelQueued,
  getTask,
  getTaskByIdempotencyKey,
  isTerminal,
  type ListFilter,
  listActiveTasks,
  listEvents,
  listTasks,
  type NewTask,
  type OutputChunk,
  publicTask,
  readOutput,
  requestCancel,
  type Task,
  type TaskEventRecord,
  type TaskRecord,
  type WaitReason,
  waitReason,
  withTransaction,
} from '../db/index.ts';
import { createTasks, removeTaskJob, retryTask } from '../queue/index.ts';
import { InputError } from './errors.ts';
import type { TaskFeed } from './feed.ts';
import { GroupCommit } from './group-commit.ts';
import type { Registry } from './registry.ts';
import type { Runner } from './runner.ts';
import type { TaskTypes } from './task-type.ts';

export interface TaskServiceOptions {
  pool: pg.Pool;
  registry: Registry;
  runner: Runner;
  feed: TaskFeed;
  pubsub: PubSub;
  types: TaskTypes;
  defaultType: string;
  defaultMaxAttempts: number;
  nodeId: string;
  /** How far ahead `run_at` / `delay_ms` may put a task's start. */
  maxDelayMs: number;
  log: Logger;
  /** Observes every task created (metrics). */
  onCreated?: (task: TaskRecord) => void;
}

export interface CreateRequest {
  owner: string;
  type?: string;
  input: Record<string, unknown>;
  maxAttempts?: number;
  idempotencyKey?: string;
  /** -100..100 (default 0): higher runs sooner. */
  priority?: unknown;
  /** An ISO 8601 time with a zone: do not start before it (in the past: at once). */
  runAt?: unknown;
  /** Do not start for this many milliseconds (not with runAt). */
  delayMs?: unknown;
  /**
   * The request body's size in bytes, when known: the node may then keep the new task's row in
   * memory for the join that usually follows (see Registry `created`).
   */
  bodyBytes?: number;
}

export type CancelResult =
  | { kind: 'not_found' }
  | { kind: 'conflict'; task: Task }
  | { kind: 'accepted'; task: Task };

export type RetryResult = CancelResult;

/** An ISO 8601 date-time with seconds optional and a zone (Z or an offset) required. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** A join's answer: the state to reply with, or why it is refused. */
export type JoinResult<T> = { ok: true; state: T } | { ok: false; reason: 'unauthorized' | 'unavailable' };

/** The tasks a `user:` or `admin:` join replies with. */
export const ACTIVE_TASKS_LIMIT = 100;
/** How long a node waits for another to say where a task it runs stands, or to cancel it. */
const STATE_TIMEOUT_MS = 1000;
const CANCEL_TIMEOUT_MS = 5000;
const UNAUTHORIZED = { ok: false, reason: 'unauthorized' } as const;
const UNAVAILABLE = { ok: false, reason: 'unavailable' } as const;

function fmtDays(ms: number): string {
  const days = ms / 86_400_000;
  return Number.isInteger(days) ? `${days} days` : `${Math.round(days * 10) / 10} days`;
}

export class TaskService {
  readonly #o: TaskServiceOptions;
  /** Concurrent creates share one statement: the row, its `created` event and its job, for each. */
  readonly #creates: GroupCommit<NewTask, TaskRecord | null>;

  constructor(opts: TaskServiceOptions) {
    this.#o = opts;
    this.#creates = new GroupCommit(async (tasks) => {
      const created = new Map((await createTasks(opts.pool, tasks)).map((t) => [t.task_id, t]));
      return tasks.map((t) => created.get(t.id) ?? null);
    });
    // What other nodes may ask of this one about the tasks it runs.
    const cluster = opts.pubsub.cluster;
    cluster?.handle('task.state', (id) =>
      typeof id === 'string' ? (opts.registry.get(id)?.state ?? null) : null,
    );
    cluster?.handle('task.output', (body) => {
      const { id, from } = (body ?? {}) as { id?: unknown; from?: unknown };
      if (typeof id !== 'string' || typeof from !== 'number') return null;
      return opts.registry.get(id)?.outputSince(from) ?? null;
    });
    cluster?.handle('task.cancel', async (id) => {
      const ended = typeof id === 'string' ? opts.runner.cancel(id) : undefined;
      return ended ? await ended : null;
    });
  }

  get types(): TaskTypes {
    return this.#o.types;
  }

  async create(req: CreateRequest): Promise<{ task: Task; created: boolean }> {
    const typeName = req.type ?? this.#o.defaultType;
    const type = this.#o.types.get(typeName);
    if (!type) {
      throw new InputError([
        { field: 'type', message: `unknown task type; known: ${this.#o.types.names().join(', ')}` },
      ]);
    }
    const fields = type.validate(req.input);
    if (fields) throw new InputError(fields);
    const { priority, scheduledAt } = this.#scheduling(req);
    const maxAttempts = req.maxAttempts ?? type.maxAttempts ?? this.#o.defaultMaxAttempts;
    const id = uuidv7();
    // Taken before the write: a node that becomes a peer meanwhile voids the remembered row.
    const epoch = req.bodyBytes === undefined ? undefined : this.#aloneEpoch();
    const { registry } = this.#o;
    if (epoch !== undefined) registry.expectCreated(id);
    const record = await this.#creates
      .submit({
        id,
        owner: req.owner,
        type: typeName,
        input: req.input,
        maxAttempts,
        idempotencyKey: req.idempotencyKey ?? null,
        priority,
        scheduledAt,
      })
      .catch((err: unknown) => {
        registry.forgetCreated(id);
        throw err;
      });
    if (record && epoch !== undefined) registry.rememberCreated(record, req.bodyBytes!, epoch);
    else registry.forgetCreated(id);
    if (record) {
      this.#o.onCreated?.(record);
      this.#o.feed.created(record);
      return { task: publicTask(record), created: true };
    }
    // The idempotency key was used before by this owner: answer with that task.
    const existing = await getTaskByIdempotencyKey(this.#o.pool, req.owner, req.idempotencyKey!);
    if (!existing) throw new Error('idempotency conflict without a stored task');
    return { task: this.#liveOr(existing), created: false };
  }

  /** `priority`, `run_at` and `delay_ms` of a create, checked (api.md "POST /api/tasks"). */
  #scheduling(req: CreateRequest): { priority: number; scheduledAt: Date | null } {
    const bad: { field: string; message: string }[] = [];
    const priority = req.priority ?? 0;
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < -100 || priority > 100) {
      bad.push({ field: 'priority', message: 'must be an integer in -100..100' });
    }
    const max = this.#o.maxDelayMs;
    let scheduledAt: Date | null = null;
    if (req.runAt !== undefined && req.delayMs !== undefined) {
      const message = 'give run_at or delay_ms, not both';
      bad.push({ field: 'run_at', message }, { field: 'delay_ms', message });
    } else if (req.runAt !== undefined) {
      const at =
        typeof req.runAt === 'string' && ISO_TIME.test(req.runAt) ? Date.parse(req.runAt) : Number.NaN;
      if (Number.isNaN(at)) {
        bad.push({
          field: 'run_at',
          message: 'must be an ISO 8601 time with a time zone, e.g. 2026-11-22T10:00:00Z',
        });
      } else if (at - Date.now() > max) {
        bad.push({ field: 'run_at', message: `must be at most ${max} ms (${fmtDays(max)}) ahead` });
      } else {
        scheduledAt = new Date(at);
      }
    } else if (req.delayMs !== undefined) {
      const ms = req.delayMs;
      if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > max) {
        bad.push({ field: 'delay_ms', message: `must be an integer in 0..${max} (${fmtDays(max)})` });
      } else if (ms > 0) {
        scheduledAt = new Date(Date.now() + ms);
      }
    }
    if (bad.length) throw new InputError(bad);
    return { priority: priority as number, scheduledAt };
  }

  /**
   * Starts a new series of attempts of a failed or cancelled task: queued again, `attempt` keeps
   * rising, a fresh budget of max_attempts, an audited and published `retried`. `owner` null acts
   * for an admin (any task); otherwise only the owner's task is found.
   */
  async retry(owner: string | null, id: string, by: string = owner ?? 'admin'): Promise<RetryResult> {
    const record = await retryTask(this.#o.pool, { taskId: id, owner, by });
    if (record) {
      this.#o.feed.event(record, 'retried');
      return { kind: 'accepted', task: publicTask(record) };
    }
    const task = await this.#current(id);
    if (!task || (owner !== null && task.owner !== owner)) return { kind: 'not_found' };
    return { kind: 'conflict', task: publicTask(task) };
  }

  /** The task's current state, or null if it is not the owner's (`null` owner: an admin's read, with `owner`). */
  async get(owner: Viewer, id: string): Promise<Task | null> {
    const task = await this.#current(id);
    return task && sees(owner, task.owner) ? viewOf(owner, task) : null;
  }

  /** A page of tasks; without `filter.owner` (an admin's read) every user's, each with `owner`. */
  async list(filter: ListFilter): Promise<{ tasks: Task[]; more: boolean }> {
    const { tasks, more } = await listTasks(this.#o.pool, filter);
    const viewer = filter.owner ?? null;
    return { tasks: tasks.map((t) => viewOf(viewer, this.#liveRecord(t))), more };
  }

  async events(owner: Viewer, id: string): Promise<TaskEventRecord[] | null> {
    const live = this.#o.registry.get(id);
    const taskOwner = live ? live.owner : (await getTask(this.#o.pool, id))?.owner;
    if (taskOwner === undefined || !sees(owner, taskOwner)) return null;
    return listEvents(this.#o.pool, id);
  }

  async cancel(owner: Viewer, id: string): Promise<CancelResult> {
    const { registry, runner, pool } = this.#o;
    for (let tries = 0; tries < 3; tries++) {
      const live = registry.get(id);
      if (live) {
        if (!sees(owner, live.owner)) return { kind: 'not_found' };
        const ended = runner.cancel(id);
        if (ended) return this.#accepted(await ended, live.state);
      }
      const task = await getTask(pool, id);
      if (!task || !sees(owner, task.owner)) return { kind: 'not_found' };
      if (isTerminal(task.status)) return { kind: 'conflict', task: publicTask(task) };
      const here = runner.cancel(id); // it runs here, its actor being restarted
      if (here) return this.#accepted(await here, task);
      if (task.status === 'queued') {
        const record = await withTransaction(pool, async (client) => {
          const row = await cancelQueued(client, id, 0);
          if (row) await removeTaskJob(client, id);
          return row;
        });
        if (record) {
          this.#o.registry.forgetCreated(id);
          this.#o.feed.event(record, 'cancelled');
          return { kind: 'accepted', task: publicTask(record) };
        }
        continue; // it started meanwhile: cancel it as a running task
      }
      // Running on another node (or on one that died): a durable mark first, which the node that
      // claims it next honours, then the node that runs it is told.
      if (!(await requestCancel(pool, id))) continue; // it ended meanwhile
      const cluster = this.#o.pubsub.cluster;
      if (task.node && cluster?.isPeer(task.node)) {
        try {
          const ended = (await cluster.request(
            task.node,
            'task.cancel',
            id,
            CANCEL_TIMEOUT_MS,
          )) as TaskRecord | null;
          if (ended) return { kind: 'accepted', task: publicTask(ended) };
        } catch (err) {
          this.#o.log.warn(
            { err, task_id: id, node: task.node },
            'cancel not confirmed by the node running it',
          );
        }
      }
      return { kind: 'accepted', task: publicTask(task) };
    }
    const task = await getTask(pool, id);
    return task ? { kind: 'conflict', task: publicTask(task) } : { kind: 'not_found' };
  }

  // ---- topics ----

  /**
   * Subscribes `sub` to `task:<id>` and returns the state to reply with: every event after it
   * reaches `sub` (possibly before this resolves; drop those not newer than the state's seq).
   */
  async joinTask(owner: Viewer, id: string, sub: TopicSubscriber): Promise<JoinResult<Task>> {
    const { registry, pubsub } = this.#o;
    const topic = taskTopic(id);
    const live = registry.get(id);
    if (live) {
      // It runs here: subscribing and taking the state is one synchronous step.
      if (!sees(owner, live.owner)) return UNAUTHORIZED;
      void pubsub.subscribe(topic, sub);
      return { ok: true, state: live.task };
    }
    const interest = pubsub.subscribe(topic, sub);
    try {
      await interest;
      const task = await this.#current(id);
      if (!task || !sees(owner, task.owner)) {
        pubsub.unsubscribe(topic, sub);
        return UNAUTHORIZED;
      }
      if (!pubsub.available && !isTerminal(task.status) && !registry.has(id)) {
        pubsub.unsubscribe(topic, sub);
        return UNAVAILABLE;
      }
      return { ok: true, state: publicTask(task) };
    } catch (err) {
      pubsub.unsubscribe(topic, sub);
      throw err;
    }
  }

  /** Subscribes `sub` to `user:<owner>` and returns the owner's tasks in flight. */
  joinUser(owner: string, sub: TopicSubscriber): Promise<JoinResult<Task[]>> {
    return this.#joinActive(userTopic(owner), owner, sub);
  }

  /** Subscribes `sub` to `admin:tasks` and returns every user's tasks in flight (with `owner`). */
  joinAdmin(sub: TopicSubscriber): Promise<JoinResult<Task[]>> {
    return this.#joinActive(ADMIN_TOPIC, null, sub);
  }

  leave(topic: string, sub: TopicSubscriber): void {
    this.#o.pubsub.unsubscribe(topic, sub);
  }

  async #joinActive(topic: string, owner: string | null, sub: TopicSubscriber): Promise<JoinResult<Task[]>> {
    const { pubsub } = this.#o;
    try {
      await pubsub.subscribe(topic, sub);
      if (!pubsub.available) {
        pubsub.unsubscribe(topic, sub);
        return UNAVAILABLE;
      }
      const tasks = await listActiveTasks(this.#o.pool, owner, ACTIVE_TASKS_LIMIT);
      return {
        ok: true,
        state: tasks.map((t) => (owner === null ? { ...this.#liveOr(t), owner: t.owner } : this.#liveOr(t))),
      };
    } catch (err) {
      pubsub.unsubscribe(topic, sub);
      throw err;
    }
  }

  // ---- streamed output ----

  /**
   * A task's output chunks with `from <= index < until`, in pages: the stored ones from the
   * database, then those only the running node's memory holds (asked over the bus when it runs
   * elsewhere). The caller checked ownership. Reads one page at a time: pace it by the reader.
   */
  async *outputPages(id: string, from: number, until: number, pageSize = 500): AsyncGenerator<OutputChunk[]> {
    if (from >= until) return;
    const memory = await this.#outputMemory(id, from);
    const stored = Math.min(until, memory ? memory.durable : until);
    let cursor = from;
    while (cursor < stored) {
      const page = await readOutput(this.#o.pool, id, cursor, stored, pageSize);
      if (page.length === 0) break;
      yield page;
      cursor = page[page.length - 1].index + 1;
    }
    if (!memory) return;
    const rest = memory.chunks.filter((c) => c.index >= cursor && c.index < until);
    for (let i = 0; i < rest.length; i += pageSize) yield rest.slice(i, i + pageSize);
  }

  /** What only memory holds of a running task's output, or null when it runs nowhere alive. */
  async #outputMemory(id: string, from: number): Promise<{ durable: number; chunks: OutputChunk[] } | null> {
    const live = this.#o.registry.get(id);
    if (live) return live.outputSince(from);
    const row = await getTask(this.#o.pool, id);
    const cluster = this.#o.pubsub.cluster;
    if (!row?.node || row.node === this.#o.nodeId || !cluster?.isPeer(row.node)) return null;
    try {
      return (await cluster.request(row.node, 'task.output', { id, from }, STATE_TIMEOUT_MS)) as {
        durable: number;
        chunks: OutputChunk[];
      } | null;
    } catch (err) {
      this.#o.log.debug(
        { err, task_id: id, node: row.node },
        'unsaved output not available; stored output only',
      );
      return null;
    }
  }

  // ---- reading the live state ----

  /**
   * While no other node can have claimed or cancelled a task unseen (the bus is up and this node
   * has no peers, or there is no bus): the cluster's peer-arrival count, which a created task's
   * remembered row is valid under. Otherwise undefined: rows are read.
   */
  #aloneEpoch(): number | undefined {
    const { pubsub } = this.#o;
    const cluster = pubsub.cluster;
    if (!cluster) return 0;
    return pubsub.available && cluster.alone ? cluster.arrivals : undefined;
  }

  /**
   * This node's actor, else (on a node alone) the row it created for a task not started yet, else
   * the row, or (when the row says another live node runs it) that node's actor.
   */
  async #current(id: string): Promise<TaskRecord | null> {
    const { registry } = this.#o;
    const live = registry.get(id);
    if (live) return live.state;
    const epoch = this.#aloneEpoch();
    const created = epoch === undefined ? undefined : registry.created(id, epoch);
    if (created) return created;
    const row = await getTask(this.#o.pool, id);
    const cluster = this.#o.pubsub.cluster;
    if (!row?.node || row.node === this.#o.nodeId || !cluster?.isPeer(row.node)) return row;
    try {
      const remote = (await cluster.request(
        row.node,
        'task.state',
        id,
        STATE_TIMEOUT_MS,
      )) as TaskRecord | null;
      if (remote && remote.task_id === id && remote.seq >= row.seq) return remote;
    } catch (err) {
      this.#o.log.debug(
        { err, task_id: id, node: row.node },
        'live state not available; answering from the row',
      );
    }
    return row;
  }

  /** Why a queued task has not started yet (api.md "Fair scheduling"), as of now. */
  waitReason(task: Task): Promise<WaitReason | null> {
    if (task.status !== 'queued') return Promise.resolve(null);
    return waitReason(this.#o.pool, task.task_id, this.#o.runner.caps);
  }

  #accepted(ended: TaskRecord | null, fallback: TaskRecord): CancelResult {
    return { kind: 'accepted', task: publicTask(ended ?? fallback) };
  }

  #liveOr(record: TaskRecord): Task {
    return this.#o.registry.get(record.task_id)?.task ?? publicTask(record);
  }

  #liveRecord(record: TaskRecord): TaskRecord {
    return this.#o.registry.get(record.task_id)?.state ?? record;
  }
}

/** Whose tasks a caller reads: a user id, or null for an admin (every user's). */
export type Viewer = string | null;

function sees(viewer: Viewer, owner: string): boolean {
  return viewer === null || viewer === owner;
}

/** The public task; an admin's read also names its owner (api.md "Authentication"). */
function viewOf(viewer: Viewer, record: TaskRecord): Task {
  return viewer === null ? ({ ...publicTask(record), owner: record.owner } as Task) : publicTask(record);
}
