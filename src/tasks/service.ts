// TaskService: the tasks part's public face for http and channels. Creating a task writes the
// row, its `created` event and its job in ONE transaction; reads prefer the live actor; a join
// subscribes and takes the state in one synchronous step.

import type pg from 'pg';
import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import {
  cancelQueued,
  getTask,
  getTaskByIdempotencyKey,
  isTerminal,
  type ListFilter,
  listEvents,
  listTasks,
  type NewTask,
  publicTask,
  requestCancel,
  type Task,
  type TaskEventRecord,
  type TaskRecord,
  withTransaction,
} from '../db/index.ts';
import { createTasks, removeTaskJob } from '../queue/index.ts';
import type { TaskActor } from './actor.ts';
import { InputError } from './errors.ts';
import { GroupCommit } from './group-commit.ts';
import type { TaskSubscriber } from './hub.ts';
import type { Registry } from './registry.ts';
import type { Runner } from './runner.ts';
import type { Supervisor } from './supervisor.ts';
import type { TaskTypes } from './task-type.ts';

export interface TaskServiceOptions {
  pool: pg.Pool;
  registry: Registry;
  supervisor: Supervisor;
  runner: Runner;
  types: TaskTypes;
  defaultType: string;
  defaultMaxAttempts: number;
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
}

export type CancelResult =
  | { kind: 'not_found' }
  | { kind: 'conflict'; task: Task }
  | { kind: 'accepted'; task: Task };

export interface Subscription {
  readonly task: Task;
  /** Stops delivering this task's events to the subscriber. */
  leave(): void;
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
    const maxAttempts = req.maxAttempts ?? type.maxAttempts ?? this.#o.defaultMaxAttempts;
    const record = await this.#creates.submit({
      id: uuidv7(),
      owner: req.owner,
      type: typeName,
      input: req.input,
      maxAttempts,
      idempotencyKey: req.idempotencyKey ?? null,
    });
    if (record) {
      this.#o.onCreated?.(record);
      return { task: publicTask(record), created: true };
    }
    // The idempotency key was used before by this owner: answer with that task.
    const existing = await getTaskByIdempotencyKey(this.#o.pool, req.owner, req.idempotencyKey!);
    if (!existing) throw new Error('idempotency conflict without a stored task');
    return { task: this.#liveOr(existing), created: false };
  }

  /** The task's state (from the live actor when there is one), or null if not the owner's. */
  async get(owner: string, id: string): Promise<Task | null> {
    const live = this.#o.registry.get(id);
    if (live) return live.owner === owner ? live.hub.state : null;
    const task = await getTask(this.#o.pool, id);
    return task && task.owner === owner ? publicTask(task) : null;
  }

  async list(filter: ListFilter): Promise<{ tasks: Task[]; more: boolean }> {
    const { tasks, more } = await listTasks(this.#o.pool, filter);
    return { tasks: tasks.map((t) => this.#liveOr(t)), more };
  }

  async events(owner: string, id: string): Promise<TaskEventRecord[] | null> {
    const live = this.#o.registry.get(id);
    if (live ? live.owner !== owner : (await getTask(this.#o.pool, id))?.owner !== owner) return null;
    return listEvents(this.#o.pool, id);
  }

  async cancel(owner: string, id: string): Promise<CancelResult> {
    const { registry, runner, pool } = this.#o;
    for (let tries = 0; tries < 3; tries++) {
      const live = registry.get(id);
      const task = live ? live.state : await getTask(pool, id);
      if (!task || task.owner !== owner) return { kind: 'not_found' };
      if (isTerminal(task.status)) return { kind: 'conflict', task: publicTask(task) };
      if (live?.attempt && runner.cancel(id)) {
        return { kind: 'accepted', task: publicTask(await live.settled()) };
      }
      if (task.status === 'queued') {
        const record = await withTransaction(pool, async (client) => {
          const row = await cancelQueued(client, id, live?.state.seq ?? 0);
          if (row) await removeTaskJob(client, id);
          return row;
        });
        if (record) {
          registry.get(id)?.commit('cancelled', record);
          return { kind: 'accepted', task: publicTask(record) };
        }
        continue; // it started meanwhile: cancel it as a running task
      }
      // Running in another process (or in one that died): mark it; its runner ends the attempt.
      if (await requestCancel(pool, id)) return { kind: 'accepted', task: publicTask(task) };
    }
    const task = await getTask(pool, id);
    return task ? { kind: 'conflict', task: publicTask(task) } : { kind: 'not_found' };
  }

  /**
   * Subscribes `sub` to the task's events. `onState` receives the state synchronously right
   * after subscribing, before any event can reach `sub`, so nothing falls between the two and
   * nothing arrives twice. Null when the task does not exist or is not the owner's.
   */
  async join(
    owner: string,
    id: string,
    sub: TaskSubscriber,
    onState: (task: Task) => void,
  ): Promise<Subscription | null> {
    const actor = await this.#o.registry.lookupOrStart(id);
    if (!actor || actor.owner !== owner) {
      if (actor) this.#o.supervisor.maybeRelease(actor);
      return null;
    }
    this.#o.supervisor.adopted(actor);
    const task = actor.hub.subscribe(sub);
    onState(task);
    return {
      task,
      leave: () => this.#leave(actor, sub),
    };
  }

  #leave(actor: TaskActor, sub: TaskSubscriber): void {
    actor.hub.unsubscribe(sub);
    if (!actor.stopped) this.#o.supervisor.maybeRelease(actor);
  }

  #liveOr(record: TaskRecord): Task {
    const live = this.#o.registry.get(record.task_id);
    return live ? live.hub.state : publicTask(record);
  }
}
