// The `user:<sub>` channel (api.md): a token joins only its own; the reply lists the user's tasks
// in flight, then every event of every task of the user follows, from any node. Must not touch
// the database or know the wire.
import type { TopicSubscriber } from '../bus/index.ts';
import { type Task, USER_TOPIC_PREFIX } from '../contract/index.ts';
import type { JoinResult as TasksJoin } from '../tasks/index.ts';
import type { ChannelContext, ChannelFactory, JoinResult } from './router.ts';
import { TopicChannel } from './task-channel.ts';

export interface UserTopicSource {
  joinUser(owner: string, sub: TopicSubscriber): Promise<TasksJoin<Task[]>>;
  leave(topic: string, sub: TopicSubscriber): void;
}

const UNAUTHORIZED: JoinResult = { ok: false, response: { reason: 'unauthorized' } };

class UserChannel extends TopicChannel {
  readonly #tasks: UserTopicSource;

  constructor(tasks: UserTopicSource) {
    super();
    this.#tasks = tasks;
  }

  async join(_params: unknown, ctx: ChannelContext): Promise<JoinResult> {
    if (ctx.topic.slice(USER_TOPIC_PREFIX.length) !== ctx.userId) return UNAUTHORIZED;
    this.ctx = ctx;
    const result = await this.#tasks.joinUser(ctx.userId, this);
    if (!result.ok) return { ok: false, response: { reason: result.reason } };
    if (!this.subscribed(ctx.topic)) return { ok: true };
    const tasks = result.state;
    return this.accept(
      { tasks },
      tasks.map((t) => ({ key: t.task_id, seq: t.seq })),
    );
  }

  protected release(topic: string): void {
    this.#tasks.leave(topic, this);
  }
}

export function userChannel(tasks: UserTopicSource): ChannelFactory {
  return () => new UserChannel(tasks);
}
