// The `admin:tasks` channel (api.md): admin tokens only. The reply lists every user's tasks in
// flight, then every event of every task follows, from any node (payloads name the owner), and
// the server's stats every few seconds as a `stats` event. Must not touch the database or know
// the wire.
import { type TopicSubscriber, topicEvent } from '../bus/index.ts';
import { EVENT_CLASS, type Stats, type Task } from '../contract/index.ts';
import type { JoinResult as TasksJoin } from '../tasks/index.ts';
import type { ChannelContext, ChannelFactory, JoinResult } from './router.ts';
import { TopicChannel } from './task-channel.ts';

export interface AdminTopicSource {
  joinAdmin(sub: TopicSubscriber): Promise<TasksJoin<Task[]>>;
  leave(topic: string, sub: TopicSubscriber): void;
}

/** Stats computed once per interval on this node for all its admin channels; returns the unwatch. */
export type StatsWatch = (listener: (stats: Stats) => void) => () => void;

const UNAUTHORIZED: JoinResult = { ok: false, response: { reason: 'unauthorized' } };
/** The key of `stats` events: a slow reader keeps only the newest. */
const STATS_KEY = 'stats';

class AdminChannel extends TopicChannel {
  readonly #tasks: AdminTopicSource;
  readonly #watchStats: StatsWatch | undefined;
  #unwatch: (() => void) | undefined;
  #statsSeq = 0;

  constructor(tasks: AdminTopicSource, watchStats: StatsWatch | undefined) {
    super();
    this.#tasks = tasks;
    this.#watchStats = watchStats;
  }

  async join(_params: unknown, ctx: ChannelContext): Promise<JoinResult> {
    if (!ctx.admin) return UNAUTHORIZED;
    this.ctx = ctx;
    const result = await this.#tasks.joinAdmin(this);
    if (!result.ok) return { ok: false, response: { reason: result.reason } };
    if (!this.subscribed(ctx.topic)) return { ok: true };
    const tasks = result.state;
    const joined = this.accept(
      { tasks },
      tasks.map((t) => ({ key: t.task_id, seq: t.seq })),
    );
    if (this.ctx === null) return joined; // the join crashed (too much happened meanwhile)
    this.#unwatch = this.#watchStats?.((stats) => {
      this.#statsSeq += 1;
      this.ctx?.push(
        topicEvent(
          ctx.topic,
          'stats',
          stats as unknown as Record<string, unknown>,
          EVENT_CLASS.stats,
          STATS_KEY,
          this.#statsSeq,
        ),
      );
    });
    return joined;
  }

  override terminate(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
    super.terminate();
  }

  protected release(topic: string): void {
    this.#tasks.leave(topic, this);
  }
}

export function adminChannel(tasks: AdminTopicSource, watchStats?: StatsWatch): ChannelFactory {
  return () => new AdminChannel(tasks, watchStats);
}
