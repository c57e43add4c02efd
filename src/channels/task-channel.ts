// The `task:<uuid>` channel (api.md): ownership check, subscribe-and-reply in one synchronous step,
// events in seq order. Must not touch the database or know the wire format.
import type { TaskEvent, TaskService, TaskSubscriber } from '../tasks/index.ts';
import type { ChannelContext, ChannelFactory, ChannelHandler, JoinResult, Reply } from './router.ts';

type Subscription = NonNullable<Awaited<ReturnType<TaskService['join']>>>;

export const TASK_TOPIC_PREFIX = 'task:';
/** Canonical (lowercase) UUIDs only: the topic must be exactly `task:` + the id the server gave. */
const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UNAUTHORIZED: JoinResult = { ok: false, response: { reason: 'unauthorized' } };
const OK: JoinResult = { ok: true };
const UNKNOWN_EVENT: Reply = { status: 'error', response: { reason: 'unknown event' } };

/** The task channel is its own subscriber: the hub calls push/lost on it directly. */
class TaskChannel implements ChannelHandler, TaskSubscriber {
  readonly #tasks: Pick<TaskService, 'join'>;
  #ctx: ChannelContext | null = null;
  #subscription: Subscription | null = null;
  #ended = false;

  constructor(tasks: Pick<TaskService, 'join'>) {
    this.#tasks = tasks;
  }

  async join(_params: unknown, ctx: ChannelContext): Promise<JoinResult> {
    const id = ctx.topic.slice(TASK_TOPIC_PREFIX.length);
    // Unknown and foreign ids get the same answer, so ids cannot be probed.
    if (!TASK_ID.test(id)) return UNAUTHORIZED;
    this.#ctx = ctx;
    // The reply goes out inside onState, right after subscribing: no event can precede it.
    const subscription = await this.#tasks.join(ctx.userId, id, this, (task) => ctx.accept({ task }));
    if (!subscription) return UNAUTHORIZED;
    if (this.#ended) subscription.leave();
    else this.#subscription = subscription;
    return OK;
  }

  handleIn(): Reply {
    return UNKNOWN_EVENT;
  }

  terminate(): void {
    this.#ended = true;
    this.#ctx = null;
    const subscription = this.#subscription;
    this.#subscription = null;
    subscription?.leave();
  }

  push(event: TaskEvent): void {
    this.#ctx?.push(event);
  }

  lost(): void {
    const ctx = this.#ctx;
    this.#subscription = null; // the hub has already dropped us
    ctx?.crash();
  }
}

export function taskChannel(tasks: Pick<TaskService, 'join'>): ChannelFactory {
  return () => new TaskChannel(tasks);
}
