// The fan-out side of a task: its local subscribers and the latest state they should see.
// The actor (which owns the state) feeds the hub through publish(); subscribers only ever talk
// to the hub. Keeping the two apart is the seam for a multi-node bus (design.md).
import type { Task, TaskRecord } from '../db/index.ts';
import { publicTask } from '../db/index.ts';
import type { TaskEvent } from './events.ts';

export interface TaskSubscriber {
  /** A new event of the task, in seq order. Called synchronously; must not throw or block. */
  push(event: TaskEvent): void;
  /** The task's live state was lost (its actor crashed): this subscription has ended. */
  lost(): void;
}

export class TaskHub {
  readonly taskId: string;
  readonly owner: string;
  readonly subscribers = new Set<TaskSubscriber>();
  #state: TaskRecord;
  onError: (err: unknown, sub: TaskSubscriber) => void = () => {};

  constructor(state: TaskRecord) {
    this.taskId = state.task_id;
    this.owner = state.owner;
    this.#state = state;
  }

  /** Subscribes and returns the state as of now, in one synchronous step. */
  subscribe(sub: TaskSubscriber): Task {
    this.subscribers.add(sub);
    return publicTask({ ...this.#state });
  }

  unsubscribe(sub: TaskSubscriber): void {
    this.subscribers.delete(sub);
  }

  get state(): Task {
    return publicTask({ ...this.#state });
  }

  /** Hands the same event object to every subscriber; one faulty subscriber is dropped alone. */
  publish(event: TaskEvent, state: TaskRecord): void {
    this.#state = state;
    for (const sub of this.subscribers) {
      try {
        sub.push(event);
      } catch (err) {
        this.subscribers.delete(sub);
        this.onError(err, sub);
      }
    }
  }

  /** The state behind this hub is gone: every subscriber learns it and is dropped. */
  lose(): void {
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const sub of subs) {
      try {
        sub.lost();
      } catch (err) {
        this.onError(err, sub);
      }
    }
  }

  /** Frees the subscriber set without telling anyone (the task is over; nothing more will come). */
  release(): void {
    this.subscribers.clear();
  }
}
