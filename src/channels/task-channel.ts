// The `task:<uuid>` channel (api.md): the owner's join gets the task's current state, then every
// later event in seq order, wherever the task runs. Must not touch the database or know the wire.
import type { TopicEvent, TopicSubscriber } from '../bus/index.ts';
import { isTaskId, TASK_TOPIC_PREFIX, type Task } from '../contract/index.ts';
import type { JoinResult as TasksJoin } from '../tasks/index.ts';
import { JoinGate } from './join-gate.ts';
import type { ChannelContext, ChannelFactory, ChannelHandler, JoinResult, Reply } from './router.ts';

/** What the task channel needs of the tasks part. */
export interface TaskTopicSource {
  joinTask(owner: string, id: string, sub: TopicSubscriber): Promise<TasksJoin<Task>>;
  leave(topic: string, sub: TopicSubscriber): void;
}

const UNAUTHORIZED: JoinResult = { ok: false, response: { reason: 'unauthorized' } };
const OK: JoinResult = { ok: true };
export const UNKNOWN_EVENT: Reply = { status: 'error', response: { reason: 'unknown event' } };

/** A channel on one topic that subscribes through the tasks part and is its own subscriber. */
export abstract class TopicChannel implements ChannelHandler, TopicSubscriber {
  protected ctx: ChannelContext | null = null;
  protected readonly gate = new JoinGate();
  #subscribed = false;
  #ended = false;
  #topic = '';

  abstract join(params: unknown, ctx: ChannelContext): Promise<JoinResult>;
  protected abstract release(topic: string): void;

  /** Registers the subscription; false when the channel ended meanwhile (it was released). */
  protected subscribed(topic: string): boolean {
    this.#topic = topic;
    if (this.#ended) {
      this.release(topic);
      return false;
    }
    this.#subscribed = true;
    return true;
  }

  /** Sends the ok reply, then the events held since subscribing that are newer than `states`. */
  protected accept(
    response: Record<string, unknown>,
    states: Iterable<{ key: string; seq: number }>,
  ): JoinResult {
    const ctx = this.ctx;
    if (!ctx) return OK;
    if (this.gate.overflowed) {
      ctx.crash(); // too much happened during the join: the client rejoins
      return OK;
    }
    ctx.accept(response);
    for (const event of this.gate.open(states)) ctx.push(event);
    return OK;
  }

  handleIn(): Reply {
    return UNKNOWN_EVENT;
  }

  terminate(): void {
    this.#ended = true;
    this.ctx = null;
    if (this.#subscribed) {
      this.#subscribed = false;
      this.release(this.#topic);
    }
  }

  deliver(event: TopicEvent): void {
    if (this.gate.admit(event)) this.ctx?.push(event);
  }

  lost(): void {
    const ctx = this.ctx;
    this.#subscribed = false; // the hub has already dropped us
    ctx?.crash();
  }
}

class TaskChannel extends TopicChannel {
  readonly #tasks: TaskTopicSource;

  constructor(tasks: TaskTopicSource) {
    super();
    this.#tasks = tasks;
  }

  async join(_params: unknown, ctx: ChannelContext): Promise<JoinResult> {
    const id = ctx.topic.slice(TASK_TOPIC_PREFIX.length);
    // Unknown and foreign ids get the same answer, so ids cannot be probed.
    if (!isTaskId(id)) return UNAUTHORIZED;
    this.ctx = ctx;
    const result = await this.#tasks.joinTask(ctx.userId, id, this);
    if (!result.ok) return { ok: false, response: { reason: result.reason } };
    if (!this.subscribed(ctx.topic)) return OK;
    return this.accept({ task: result.state }, [{ key: id, seq: result.state.seq }]);
  }

  protected release(topic: string): void {
    this.#tasks.leave(topic, this);
  }
}

export function taskChannel(tasks: TaskTopicSource): ChannelFactory {
  return () => new TaskChannel(tasks);
}
