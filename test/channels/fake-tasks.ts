// FAKE task state, for channels unit tests only: tasks held in a map stand in for the database and
// the actors, over a REAL PubSub (the bus part, one node), so the channels see the same topic
// events, join window and losses as in a server. Controllable join latency and failures. The real
// service is used by every other test.
import pino from 'pino';
import { PubSub, type TopicEvent, type TopicSubscriber, topicEvent } from '../../src/bus/index.ts';
import {
  ADMIN_TOPIC,
  EVENT_CLASS,
  type TaskEventName,
  taskTopic,
  userTopic,
} from '../../src/contract/index.ts';
import type { Task } from '../../src/db/index.ts';
import type { JoinResult } from '../../src/tasks/index.ts';
import { taskFixture } from '../helpers/task-fixture.ts';

interface FakeTask {
  task: Task;
  owner: string;
}

export class FakeTasks {
  readonly pubsub = new PubSub({ log: pino({ level: 'silent' }) });
  readonly tasks = new Map<string, FakeTask>();
  /** Milliseconds each join waits after subscribing, before reading the state (a database read). */
  joinDelayMs = 0;
  /** When set, join throws (a database failure). */
  failJoins = false;
  joins = 0;

  add(id: string, owner: string): Task {
    const now = new Date().toISOString();
    const task = taskFixture({ task_id: id, inserted_at: now, updated_at: now });
    this.tasks.set(id, { task, owner });
    return task;
  }

  subscribers(id: string): number {
    return this.pubsub.subscribers(taskTopic(id));
  }

  /** Joins started and not yet answered. */
  #pending = new Set<Promise<unknown>>();

  /** Resolves once every join started so far has been answered (or has failed). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  joinTask = (owner: string, id: string, sub: TopicSubscriber): Promise<JoinResult<Task>> => {
    const joining = this.#joinTask(owner, id, sub);
    this.#pending.add(joining);
    void joining.finally(() => this.#pending.delete(joining)).catch(() => {});
    return joining;
  };

  #joinTask = async (owner: string, id: string, sub: TopicSubscriber): Promise<JoinResult<Task>> => {
    this.joins += 1;
    const topic = taskTopic(id);
    await this.pubsub.subscribe(topic, sub);
    try {
      if (this.joinDelayMs > 0) await new Promise((r) => setTimeout(r, this.joinDelayMs));
      else await Promise.resolve();
      if (this.failJoins) throw new Error('database unavailable');
    } catch (err) {
      this.pubsub.unsubscribe(topic, sub);
      throw err;
    }
    const t = this.tasks.get(id);
    if (!t || t.owner !== owner) {
      this.pubsub.unsubscribe(topic, sub);
      return { ok: false, reason: 'unauthorized' };
    }
    return { ok: true, state: { ...t.task } };
  };

  joinUser = async (owner: string, sub: TopicSubscriber): Promise<JoinResult<Task[]>> => {
    await this.pubsub.subscribe(userTopic(owner), sub);
    const tasks = [...this.tasks.values()].filter((t) => t.owner === owner).map((t) => ({ ...t.task }));
    return { ok: true, state: tasks };
  };

  joinAdmin = async (sub: TopicSubscriber): Promise<JoinResult<Task[]>> => {
    await this.pubsub.subscribe(ADMIN_TOPIC, sub);
    return { ok: true, state: [...this.tasks.values()].map((t) => ({ ...t.task, owner: t.owner })) };
  };

  /** Output chunks of a task, as if stored (tests fill it). */
  readonly output = new Map<string, Array<{ index: number; data: unknown; attempt: number }>>();

  outputPages = async function* (this: FakeTasks, id: string, from: number, until: number) {
    const chunks = (this.output.get(id) ?? []).filter((c) => c.index >= from && c.index < until);
    for (let i = 0; i < chunks.length; i += 100) yield chunks.slice(i, i + 100);
  };

  leave = (topic: string, sub: TopicSubscriber): void => {
    this.pubsub.unsubscribe(topic, sub);
  };

  /** Publishes one event of the task on its topics (one shared object per topic, like the feed). */
  emit(id: string, name: TaskEventName, extra: Record<string, unknown> = {}): TopicEvent {
    const t = this.tasks.get(id)!;
    t.task.seq += 1;
    const payload = {
      task_id: id,
      type: t.task.type,
      status: t.task.status,
      progress: t.task.progress,
      message: null,
      seq: t.task.seq,
      attempt: 1,
      at: Date.now(),
      ...extra,
    };
    const event = topicEvent(taskTopic(id), name, payload, EVENT_CLASS[name], id, t.task.seq);
    this.pubsub.publish(event);
    this.pubsub.publish(topicEvent(userTopic(t.owner), name, payload, EVENT_CLASS[name], id, t.task.seq));
    return event;
  }

  /** The task's live state is lost: every subscriber is told and dropped. */
  lose(id: string): void {
    this.pubsub.lose(taskTopic(id));
  }
}
