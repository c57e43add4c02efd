// Topic -> channel: which channel module serves a topic, and the contract a channel implements.
// It must not know transports, serializers or what any particular topic means.
import type { TopicEvent } from '../bus/index.ts';

/** What a channel may do with its socket, handed to it at join. */
export interface ChannelContext {
  readonly topic: string;
  readonly userId: string;
  /**
   * Sends the ok join reply now and registers the channel. Call it synchronously right after
   * subscribing, so no event can precede the reply (spec 4.1); at most once.
   */
  accept(response: Record<string, unknown>): void;
  /** Delivers an event of this topic (broadcast form: null join_ref, null ref). */
  push(event: TopicEvent): void;
  /** Resolves when the socket can take more (its buffer is under the soft limit): pace a backlog by it. */
  writable(): Promise<void>;
  /** The channel's backing state is gone: phx_error to the client, the topic is freed. */
  crash(): void;
}

export type JoinResult = { ok: true } | { ok: false; response: Record<string, unknown> };

export interface Reply {
  status: string;
  response: unknown;
}

/** One joined topic on one socket (Phoenix's channel process). */
export interface ChannelHandler {
  /** Joins; an ok result without accept() gets an ok reply with `{}`. May reject: "join crashed". */
  join(params: unknown, ctx: ChannelContext): Promise<JoinResult>;
  /** A client event on the joined topic; undefined means no reply. */
  handleIn(event: string, payload: unknown): Reply | undefined;
  /** The channel ends (leave, duplicate join, socket closed): release everything. Idempotent. */
  terminate(): void;
}

export type ChannelFactory = (topic: string, userId: string) => ChannelHandler;

/** Routes as in Phoenix's `channel "task:*", TaskChannel`: exact topics or `prefix*`. */
export class Router {
  readonly #exact = new Map<string, ChannelFactory>();
  readonly #prefixes: Array<[string, ChannelFactory]> = [];

  add(pattern: string, factory: ChannelFactory): this {
    if (pattern.endsWith('*')) this.#prefixes.push([pattern.slice(0, -1), factory]);
    else this.#exact.set(pattern, factory);
    return this;
  }

  match(topic: string): ChannelFactory | undefined {
    const exact = this.#exact.get(topic);
    if (exact) return exact;
    for (const [prefix, factory] of this.#prefixes) if (topic.startsWith(prefix)) return factory;
    return undefined;
  }
}
