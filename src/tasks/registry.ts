// Registry: task id -> the actor of the attempt running on this node (the seed's Registry). A
// task has an actor here exactly while this node runs an attempt of it; everything else about a
// task is read from the database or asked of the node that runs it.
import type { TaskActor } from './actor.ts';

export class Registry {
  readonly #actors = new Map<string, TaskActor>();

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
    this.#actors.set(actor.id, actor);
  }

  /** Forgets an actor, only if it is still the registered one for its task. */
  unregister(actor: TaskActor): void {
    if (this.#actors.get(actor.id) === actor) this.#actors.delete(actor.id);
  }
}
