// Registry: task id -> the actor of the attempt running on this node (the seed's Registry). A
// task has an actor here exactly while this node runs an attempt of it; everything else about a
// task is read from the database or asked of the node that runs it; except, on a node alone,
// the tasks it has just created and nobody has started yet (`created`).
import type { TaskRecord } from '../db/index.ts';
import type { TaskActor } from './actor.ts';

/** At most this many created-but-unstarted tasks are remembered (the oldest go first)... */
const CREATED_MAX_ENTRIES = 4096;
/** ...holding at most this many bytes of request bodies between them. */
const CREATED_MAX_BYTES = 8 * 1024 * 1024;

interface Created {
  record: TaskRecord;
  bytes: number;
  /** The cluster's peer arrivals when it was created: the record holds only while that stays. */
  epoch: number;
}

export class Registry {
  readonly #actors = new Map<string, TaskActor>();
  /**
   * Tasks this node created, as their row was written, until an attempt starts here (or a
   * cancel ends them here): the answer to the join that follows a POST, without reading the row
   * back. Kept only while the node is alone: no other node could have claimed them unseen.
   */
  readonly #created = new Map<string, Created>();
  #createdBytes = 0;
  /** Tasks being created here whose row may be remembered once written (see `expectCreated`). */
  readonly #creating = new Set<string>();

  get size(): number {
    return this.#actors.size;
  }

  get(id: string): TaskActor | undefined {
    return this.#actors.get(id);
  }

  has(id: string): boolean {
    return this.#actors.has(id);
  }

  actors(): IterableIterator<TaskActor> {
    return this.#actors.values();
  }

  /** Registers `actor` for its task, replacing any earlier one. */
  register(actor: TaskActor): void {
    this.forgetCreated(actor.id);
    this.#actors.set(actor.id, actor);
  }

  /** Forgets an actor, only if it is still the registered one for its task. */
  unregister(actor: TaskActor): void {
    if (this.#actors.get(actor.id) === actor) this.#actors.delete(actor.id);
  }

  /**
   * A task is about to be created here: its row may be remembered once written, unless an
   * attempt of it starts here first (the create's reply can come after the queue's wake-up).
   */
  expectCreated(id: string): void {
    if (this.#creating.size < CREATED_MAX_ENTRIES) this.#creating.add(id);
  }

  /** Remembers a task this node just created (`bytes`: its request body's size) while peers stay at `epoch`. */
  rememberCreated(record: TaskRecord, bytes: number, epoch: number): void {
    if (!this.#creating.delete(record.task_id) || bytes > CREATED_MAX_BYTES) return;
    this.forgetCreated(record.task_id);
    this.#created.set(record.task_id, { record, bytes, epoch });
    this.#createdBytes += bytes;
    for (const [id, entry] of this.#created) {
      if (this.#created.size <= CREATED_MAX_ENTRIES && this.#createdBytes <= CREATED_MAX_BYTES) break;
      this.#created.delete(id);
      this.#createdBytes -= entry.bytes;
    }
  }

  /** The row of a task this node created and nobody started since, if peers are still at `epoch`. */
  created(id: string, epoch: number): TaskRecord | undefined {
    const entry = this.#created.get(id);
    if (!entry) return undefined;
    if (entry.epoch === epoch) return entry.record;
    this.forgetCreated(id);
    return undefined;
  }

  /** Stops answering for a created task (it started, or ended, here, or its create failed). */
  forgetCreated(id: string): void {
    this.#creating.delete(id);
    const entry = this.#created.get(id);
    if (!entry) return;
    this.#created.delete(id);
    this.#createdBytes -= entry.bytes;
  }

  /** How many created tasks are remembered (for tests and metrics). */
  get createdSize(): number {
    return this.#created.size;
  }
}
