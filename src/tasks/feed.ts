// TaskFeed: puts a task's events on its topics (api.md): `task:<id>`, `user:<owner>` and
// `admin:tasks` (whose payloads also name the owner). An event is built only for a topic someone
// listens on, here or on another node, so a task nobody watches costs one map lookup per topic.
import { type PubSub, type TopicEvent, topicEvent } from '../bus/index.ts';
import {
  ADMIN_TOPIC,
  EVENT_CLASS,
  type TaskEventBase,
  type TaskEventName,
  taskTopic,
  userTopic,
} from '../contract/index.ts';
import { publicTask, type TaskRecord } from '../db/index.ts';

/** A task's topic names, computed once per actor instead of once per event. */
export interface TaskTopics {
  readonly task: string;
  readonly user: string;
}

export function topicsOf(task: Pick<TaskRecord, 'task_id' | 'owner'>): TaskTopics {
  return { task: taskTopic(task.task_id), user: userTopic(task.owner) };
}

export class TaskFeed {
  readonly #pubsub: PubSub;

  constructor(pubsub: PubSub) {
    this.#pubsub = pubsub;
  }

  /** Publishes one event of a task whose state (after the event) is `s`. */
  event(
    s: TaskRecord,
    name: TaskEventName,
    extra: Record<string, unknown> = {},
    topics: TaskTopics = topicsOf(s),
    at: number = Date.now(),
  ): void {
    const ps = this.#pubsub;
    // The first event after `created` may come from another node than the one that created the
    // task (it claimed it), and the bus keeps order per publisher only: that node's seq 1 could
    // reach a watcher before the creator's `created`, which the watcher would then drop as older.
    // So the publisher of seq 1, unless alone, announces `created` first itself; whichever copy
    // comes second is dropped by seq like any duplicate.
    if (s.seq === 1 && ps.cluster?.alone === false) this.created(asCreated(s));
    const toTask = ps.wants(topics.task);
    const toUser = ps.wants(topics.user);
    const toAdmin = ps.wants(ADMIN_TOPIC);
    if (!toTask && !toUser && !toAdmin) return;
    const payload: TaskEventBase & Record<string, unknown> = {
      task_id: s.task_id,
      type: s.type,
      status: s.status,
      progress: s.progress,
      message: s.message,
      seq: s.seq,
      attempt: s.attempt,
      at,
      ...extra,
    };
    const cls = EVENT_CLASS[name];
    if (toTask) ps.publish(topicEvent(topics.task, name, payload, cls, s.task_id, s.seq));
    if (toUser) ps.publish(topicEvent(topics.user, name, payload, cls, s.task_id, s.seq));
    if (toAdmin)
      ps.publish(topicEvent(ADMIN_TOPIC, name, { ...payload, owner: s.owner }, cls, s.task_id, s.seq));
  }

  /** An output chunk, on `task:<id>` only (api.md: output is not sent on user or admin topics). */
  output(s: TaskRecord, index: number, data: unknown, topics: TaskTopics): void {
    if (!this.#pubsub.wants(topics.task)) return;
    const payload = { task_id: s.task_id, index, data, attempt: s.attempt };
    this.#pubsub.publish(topicEvent(topics.task, 'output', payload, EVENT_CLASS.output, s.task_id, index));
  }

  /** A new attempt starts its output over at `start`: chunks below it are void. */
  outputReset(s: TaskRecord, topics: TaskTopics): void {
    if (!this.#pubsub.wants(topics.task)) return;
    const start = s.output.start;
    const payload = { task_id: s.task_id, attempt: s.attempt, start };
    this.#pubsub.publish(
      topicEvent(topics.task, 'output_reset', payload, EVENT_CLASS.output_reset, s.task_id, start),
    );
  }

  /** `created` (the whole new task) on the owner's topic and the admin topic. */
  created(record: TaskRecord): void {
    const ps = this.#pubsub;
    const user = userTopic(record.owner);
    if (ps.wants(user)) ps.publish(this.#created(user, { ...publicTask(record) }, record));
    if (ps.wants(ADMIN_TOPIC))
      ps.publish(this.#created(ADMIN_TOPIC, { ...publicTask(record), owner: record.owner }, record));
  }

  #created(topic: string, payload: Record<string, unknown>, r: TaskRecord): TopicEvent {
    return topicEvent(topic, 'created', payload, EVENT_CLASS.created, r.task_id, r.seq);
  }
}

/**
 * The task as its `created` announced it (createTasks: the columns' defaults), from its state
 * after the event that followed (seq 1: a claim or a cancel, which change none of the fields kept).
 */
function asCreated(s: TaskRecord): TaskRecord {
  return {
    ...s,
    status: 'queued',
    progress: 0,
    message: null,
    result: null,
    error: null,
    attempt: 0,
    node: null,
    output: { start: 0, next: 0 },
    seq: 0,
    updated_at: s.inserted_at,
  };
}
