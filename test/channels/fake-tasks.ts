// FAKE, for channels unit tests only: an in-memory stand-in for TaskService.join with the same
// contract (onState called synchronously right after subscribing), controllable join latency,
// and hooks to emit events or lose a task's state. The real service is used by every other test.
import type { Task } from '../../src/db/index.ts';
import type { TaskEvent, TaskEventName, TaskSubscriber } from '../../src/tasks/index.ts';

interface FakeTask {
  task: Task;
  subscribers: Set<TaskSubscriber>;
}

export class FakeTasks {
  readonly tasks = new Map<string, FakeTask>();
  /** Milliseconds each join waits before subscribing (an async database load). */
  joinDelayMs = 0;
  /** When set, join throws (a database failure). */
  failJoins = false;
  joins = 0;

  add(id: string, owner: string): Task {
    const task = {
      task_id: id,
      type: 'demo',
      status: 'running',
      progress: 0,
      message: null,
      input: {},
      result: null,
      error: null,
      attempt: 1,
      max_attempts: 3,
      seq: 1,
      inserted_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
      owner,
    } as unknown as Task;
    this.tasks.set(id, { task, subscribers: new Set() });
    return task;
  }

  subscribers(id: string): number {
    return this.tasks.get(id)?.subscribers.size ?? 0;
  }

  /** Joins started and not yet answered. */
  #pending = new Set<Promise<unknown>>();

  /** Resolves once every join started so far has been answered (or has failed). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  join = (owner: string, id: string, sub: TaskSubscriber, onState: (task: Task) => void) => {
    const joining = this.#join(owner, id, sub, onState);
    this.#pending.add(joining);
    void joining.finally(() => this.#pending.delete(joining)).catch(() => {});
    return joining;
  };

  #join = async (owner: string, id: string, sub: TaskSubscriber, onState: (task: Task) => void) => {
    this.joins += 1;
    if (this.joinDelayMs > 0) await new Promise((r) => setTimeout(r, this.joinDelayMs));
    else await Promise.resolve();
    if (this.failJoins) throw new Error('database unavailable');
    const t = this.tasks.get(id);
    if (!t || (t.task as unknown as { owner: string }).owner !== owner) return null;
    t.subscribers.add(sub);
    const task = { ...t.task };
    onState(task);
    return { task, leave: () => t.subscribers.delete(sub) };
  };

  /** Publishes one event to every subscriber of the task (one shared object, like the hub). */
  emit(id: string, name: TaskEventName, extra: Record<string, unknown> = {}): TaskEvent {
    const t = this.tasks.get(id)!;
    t.task.seq += 1;
    const event: TaskEvent = {
      name,
      payload: {
        task_id: id,
        status: t.task.status,
        progress: t.task.progress,
        message: null,
        seq: t.task.seq,
        attempt: 1,
        at: Date.now(),
        ...extra,
      },
      frames: {},
    };
    for (const sub of t.subscribers) sub.push(event);
    return event;
  }

  /** The task's live state is lost: every subscriber is told and dropped. */
  lose(id: string): void {
    const t = this.tasks.get(id)!;
    const subs = [...t.subscribers];
    t.subscribers.clear();
    for (const sub of subs) sub.lost();
  }
}
