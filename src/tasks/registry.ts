// Registry: task id -> live actor (the seed's Registry). lookupOrStart loads a task from the
// database at most once however many callers ask at the same time; a join and a job for the
// same task meet at the same actor.
import type { TaskRecord } from '../db/index.ts';
import { type ActorHooks, TaskActor } from './actor.ts';

export class Registry {
  readonly #actors = new Map<string, TaskActor>();
  readonly #loading = new Map<string, Promise<TaskActor | null>>();
  readonly #load: (id: string) => Promise<TaskRecord | null>;
  hooks: ActorHooks;

  constructor(load: (id: string) => Promise<TaskRecord | null>, hooks: ActorHooks) {
    this.#load = load;
    this.hooks = hooks;
  }

  get size(): number {
    return this.#actors.size;
  }

  get(id: string): TaskActor | undefined {
    return this.#actors.get(id);
  }

  actors(): IterableIterator<TaskActor> {
    return this.#actors.values();
  }

  /** The live actor, or one started from the database row; null when there is no such task. */
  lookupOrStart(id: string): Promise<TaskActor | null> {
    const live = this.#actors.get(id);
    if (live) return Promise.resolve(live);
    let pending = this.#loading.get(id);
    if (!pending) {
      pending = this.#load(id).then(
        (record) => {
          this.#loading.delete(id);
          return record ? this.adopt(record) : null;
        },
        (err) => {
          this.#loading.delete(id);
          throw err;
        },
      );
      this.#loading.set(id, pending);
    }
    return pending;
  }

  /** The live actor, or a new one holding `record` (which the caller just read or wrote). */
  adopt(record: TaskRecord): TaskActor {
    const live = this.#actors.get(record.task_id);
    if (live) return live;
    const actor = new TaskActor(record, this.hooks);
    this.#actors.set(actor.id, actor);
    return actor;
  }

  /** Forgets an actor (only if it is still the registered one for its id). */
  remove(actor: TaskActor): void {
    if (this.#actors.get(actor.id) === actor) this.#actors.delete(actor.id);
  }
}
