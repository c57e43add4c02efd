// The `task:<uuid>` channel (api.md): the owner's join gets the task's current state, then every
// later event in seq order, wherever the task runs. With `output_from`, the output chunks from that
// index are sent first (paced by the socket), then the live ones: no gap, no duplicate, and every
// chunk of an attempt before its end. Must not touch the database or know the wire.
import { type TopicEvent, type TopicSubscriber, topicEvent } from '../bus/index.ts';
import { EVENT_CLASS, isTaskId, TASK_TOPIC_PREFIX, type Task } from '../contract/index.ts';
import type { OutputChunk } from '../db/index.ts';
import type { JoinResult as TasksJoin } from '../tasks/index.ts';
import { JoinGate } from './join-gate.ts';
import type { ChannelContext, ChannelFactory, ChannelHandler, JoinResult, Reply } from './router.ts';

/** What the task channel needs of the tasks part. */
export interface TaskTopicSource {
  joinTask(owner: string, id: string, sub: TopicSubscriber): Promise<TasksJoin<Task>>;
  leave(topic: string, sub: TopicSubscriber): void;
  outputPages(id: string, from: number, until: number): AsyncIterable<OutputChunk[]>;
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
    if (this.reply(response)) this.releaseHeld(states);
    return OK;
  }

  /** Sends the ok reply alone (events stay held until release). False when the channel is gone. */
  protected reply(response: Record<string, unknown>): boolean {
    const ctx = this.ctx;
    if (!ctx) return false;
    if (this.gate.overflowed) {
      ctx.crash(); // too much happened during the join: the client rejoins
      return false;
    }
    ctx.accept(response);
    return true;
  }

  /** Lets the held events newer than `states` go out, and every later one as it comes. */
  protected releaseHeld(states: Iterable<{ key: string; seq: number }>): void {
    if (!this.ctx) return;
    if (this.gate.overflowed) {
      this.ctx.crash();
      return;
    }
    for (const event of this.gate.open(states)) this.forward(event);
  }

  /** An event past the gate goes to the client (a channel may filter or track it here). */
  protected forward(event: TopicEvent): void {
    this.ctx?.push(event);
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
    if (this.gate.admit(event)) this.forward(event);
  }

  lost(): void {
    const ctx = this.ctx;
    this.#subscribed = false; // the hub has already dropped us
    ctx?.crash();
  }
}

/** The join param `output_from`: absent, or an integer ≥ 0; anything else is refused. */
function outputFrom(params: unknown): number | undefined | null {
  const value =
    typeof params === 'object' && params !== null
      ? (params as Record<string, unknown>).output_from
      : undefined;
  if (value === undefined || value === null) return undefined;
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : null;
}

const BAD_OUTPUT_FROM: JoinResult = {
  ok: false,
  response: { reason: 'output_from must be an integer >= 0' },
};

class TaskChannel extends TopicChannel {
  readonly #tasks: TaskTopicSource;
  #id = '';
  /** The index of the next output chunk this client should get. */
  #outputNext = 0;
  /** The output start the client knows of (a reset not past it is old news). */
  #outputStart = 0;

  constructor(tasks: TaskTopicSource) {
    super();
    this.#tasks = tasks;
  }

  async join(params: unknown, ctx: ChannelContext): Promise<JoinResult> {
    const id = ctx.topic.slice(TASK_TOPIC_PREFIX.length);
    // Unknown and foreign ids get the same answer, so ids cannot be probed.
    if (!isTaskId(id)) return UNAUTHORIZED;
    const from = outputFrom(params);
    if (from === null) return BAD_OUTPUT_FROM;
    this.ctx = ctx;
    this.#id = id;
    const result = await this.#tasks.joinTask(ctx.userId, id, this);
    if (!result.ok) return { ok: false, response: { reason: result.reason } };
    if (!this.subscribed(ctx.topic)) return OK;
    const task = result.state;
    // The gate's key is the state's task_id, not `id`: `id` is a slice of the topic, a different
    // string object from the events' keys (the task's own task_id), and every delivery's seq check
    // compared the two character by character through the slice (~4 % of the fan-out's CPU).
    const states = [{ key: task.task_id, seq: task.seq }];
    this.#outputStart = task.output.start;
    this.#outputNext = task.output.next;
    if (from === undefined) return this.accept({ task }, states);
    // The reply, then the chunks that exist now (from the index asked, within the valid output),
    // then what arrived meanwhile: held until the backlog is out, so nothing overtakes it.
    if (!this.reply({ task })) return OK;
    void this.#backlog(Math.max(from, task.output.start), task.output.next).then(
      () => this.releaseHeld(states),
      () => this.ctx?.crash(), // the client rejoins and asks again from its last index
    );
    return OK;
  }

  async #backlog(from: number, until: number): Promise<void> {
    for await (const page of this.#tasks.outputPages(this.#id, from, until)) {
      const ctx = this.ctx;
      if (!ctx) return; // left meanwhile
      for (const chunk of page) ctx.push(this.#chunkEvent(chunk));
      await ctx.writable();
    }
  }

  #chunkEvent(c: OutputChunk): TopicEvent {
    const payload = { task_id: this.#id, index: c.index, data: c.data, attempt: c.attempt };
    return topicEvent(
      `${TASK_TOPIC_PREFIX}${this.#id}`,
      'output',
      payload,
      EVENT_CLASS.output,
      this.#id,
      c.index,
    );
  }

  protected override forward(event: TopicEvent): void {
    if (event.name === 'output') {
      const index = event.seq;
      if (index < this.#outputNext) return; // sent already, or before this join
      if (index > this.#outputNext) {
        this.ctx?.crash(); // a chunk went missing on the way: the client resumes by index
        return;
      }
      this.#outputNext = index + 1;
    } else if (event.name === 'output_reset') {
      const start = event.seq;
      if (start <= this.#outputStart) return;
      this.#outputStart = start;
      this.#outputNext = Math.max(this.#outputNext, start);
    }
    super.forward(event);
  }

  protected release(topic: string): void {
    this.#tasks.leave(topic, this);
  }
}

export function taskChannel(tasks: TaskTopicSource): ChannelFactory {
  return () => new TaskChannel(tasks);
}
