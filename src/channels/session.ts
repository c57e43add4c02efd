// One connection's channel table (Phoenix's socket.ex): joins, leaves, replies, FIFO order, rate
// limit, slow-consumer flow control. Must not know how bytes travel or what a topic means.
import type { Logger } from 'pino';
import type { TopicEvent } from '../bus/index.ts';
import type { ChannelContext, ChannelHandler, JoinResult, Router } from './router.ts';
import type { Message, Serializer } from './serializers/serializer.ts';

/** How a session reaches its client. A transport calls `session.end()` once the connection is gone. */
export interface Transport {
  readonly serializer: Serializer;
  /** Bytes handed to the transport that the client has not taken yet. */
  buffered(): number;
  /** Sends one text frame, in order. */
  write(frame: string): void;
  /** Ends the connection with a close code (never 1000). */
  close(code: number, reason: string): void;
}

export interface SessionLimits {
  maxChannels: number;
  softBufferBytes: number;
  hardBufferBytes: number;
  maxMessagesPerSecond: number;
}

/** Counts shared by every session of one Channels instance (stats and /metrics). */
export class Counters {
  channels = 0;
  conflated = 0;
  eventsOut = 0;
}

/** Close codes a session asks its transport for. */
export const CLOSE_POLICY = 1008;
export const CLOSE_INTERNAL = 1011;

/** Inbound messages waiting behind an async join before the socket counts as abusive. */
const MAX_QUEUED = 1000;
const OK_EMPTY = { status: 'ok', response: {} };
const UNMATCHED = { status: 'error', response: { reason: 'unmatched topic' } };
const TOO_MANY = { status: 'error', response: { reason: 'too many channels joined' } };
const JOIN_CRASHED = { ok: false, response: { reason: 'join crashed' } } as const;
const CHANNEL_CRASH = { reason: 'channel_crash' };
const EMPTY = {};

/** Where a held-back `latest` event waits: per topic and key (several tasks share a user's topic). */
function heldKey(topic: string, key: string): string {
  return `${topic}\u0000${key}`;
}

/**
 * The one shared drain check: congested sessions hold conflated progress until their transport's
 * buffer falls under the soft limit. One timer for all of them, running only while any is waiting.
 */
export class DrainWatch {
  readonly #waiting = new Set<Session>();
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs = 20) {
    this.#intervalMs = intervalMs;
  }

  watch(session: Session): void {
    this.#waiting.add(session);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#tick(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  unwatch(session: Session): void {
    this.#waiting.delete(session);
    if (this.#waiting.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    for (const session of this.#waiting) if (session.drained()) this.#waiting.delete(session);
    if (this.#waiting.size === 0) this.stop();
  }
}

export interface SessionOptions {
  userId: string;
  transport: Transport;
  router: Router;
  limits: SessionLimits;
  counters: Counters;
  drainWatch: DrainWatch;
  log: Logger;
}

/** One channel of this session, and the context its handler talks to. */
class JoinedChannel implements ChannelContext {
  readonly topic: string;
  readonly userId: string;
  /** join_ref of the phx_join that made it (CJR); null if the join carried none. */
  readonly joinRef: string | number | null;
  /** join_ref stamped on replies: the join's join_ref, or its ref when that was null (3.1). */
  readonly replyRef: string | number | null;
  readonly ref: string | number | null;
  readonly session: Session;
  handler!: ChannelHandler;
  /** Registered in the table (accepted and not yet removed). */
  live = false;
  /** Removed or crashed: nothing more goes out for it. */
  gone = false;

  constructor(session: Session, topic: string, msg: Message) {
    this.session = session;
    this.topic = topic;
    this.userId = session.userId;
    this.joinRef = msg.joinRef;
    this.replyRef = msg.joinRef ?? msg.ref;
    this.ref = msg.ref;
  }

  accept(response: Record<string, unknown>): void {
    this.session.accept(this, response);
  }

  push(event: TopicEvent): void {
    this.session.deliver(this, event);
  }

  writable(): Promise<void> {
    return this.session.whenWritable();
  }

  crash(): void {
    this.session.crash(this);
  }
}

export class Session {
  readonly userId: string;
  readonly #o: SessionOptions;
  readonly #transport: Transport;
  readonly #ser: Serializer;
  readonly #channels = new Map<string, JoinedChannel>();
  #joining: JoinedChannel | null = null;
  #queue: Message[] = [];
  #queueHead = 0;
  #busy = false;
  #ended = false;
  #idleWaiters: Array<() => void> = [];
  /** Token bucket for the inbound rate limit. */
  #tokens: number;
  #tokensAt = performance.now();
  /** The newest `latest` event per topic and key, held back until the transport drains. */
  #pending: Map<string, TopicEvent> | null = null;
  /** Channels waiting for the transport's buffer to fall under the soft limit (a backlog being sent). */
  #writable: Array<() => void> = [];
  readonly #resume = () => this.#afterAsync();
  readonly #resumeAfterError = (err: unknown) => {
    this.#o.log.error({ err }, 'socket message handling failed');
    this.#afterAsync();
  };

  constructor(opts: SessionOptions) {
    this.#o = opts;
    this.userId = opts.userId;
    this.#transport = opts.transport;
    this.#ser = opts.transport.serializer;
    this.#tokens = opts.limits.maxMessagesPerSecond;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  /** Handles one decoded inbound message. Heartbeats are answered at once; the rest in FIFO order. */
  receive(msg: Message): void {
    if (this.#ended) return;
    if (!this.#allow()) {
      this.fail(CLOSE_POLICY, 'too many messages');
      return;
    }
    if (msg.event === 'heartbeat' && msg.topic === 'phoenix') {
      this.#send(null, msg.ref, 'phoenix', 'phx_reply', OK_EMPTY);
      return;
    }
    if (this.#busy) {
      if (this.#queue.length - this.#queueHead >= MAX_QUEUED) this.fail(CLOSE_POLICY, 'too many messages');
      else this.#queue.push(msg);
      return;
    }
    this.#dispatch(msg);
  }

  /** Resolves once every message received so far has been handled (LongPoll POST acks). */
  settled(): Promise<void> {
    if (!this.#busy || this.#ended) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Ends the connection from the server side. */
  fail(code: number, reason: string): void {
    if (this.#ended) return;
    this.#o.log.debug({ code, reason, user: this.userId }, 'closing socket');
    this.end();
    this.#transport.close(code, reason);
  }

  /** The connection is gone: every channel ends and its subscription is released. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const ch of this.#channels.values()) this.#terminate(ch);
    this.#o.counters.channels -= this.#channels.size;
    this.#channels.clear();
    if (this.#joining) this.#terminate(this.#joining);
    this.#queue = [];
    this.#queueHead = 0;
    this.#pending = null;
    this.#o.drainWatch.unwatch(this);
    this.#wakeWritable();
    this.#wakeIdle();
  }

  /**
   * The transport's buffer may have drained: sends conflated progress and wakes channels waiting
   * to write. True when nothing waits any more.
   */
  drained(): boolean {
    if (this.#ended) {
      this.#wakeWritable();
      return true;
    }
    if (!this.#pending && this.#writable.length === 0) return true;
    if (this.#transport.buffered() > this.#o.limits.softBufferBytes) return false;
    this.#flushPending();
    this.#wakeWritable();
    return true;
  }

  /** Resolves once the transport's buffer is under the soft limit (or the connection ended). */
  whenWritable(): Promise<void> {
    if (this.#ended || this.#transport.buffered() <= this.#o.limits.softBufferBytes) return Promise.resolve();
    return new Promise((resolve) => {
      this.#writable.push(resolve);
      this.#o.drainWatch.watch(this);
    });
  }

  #wakeWritable(): void {
    const waiters = this.#writable;
    if (waiters.length === 0) return;
    this.#writable = [];
    for (const wake of waiters) wake();
  }

  // ---- called by a channel through its context ----

  accept(ch: JoinedChannel, response: Record<string, unknown>): void {
    if (this.#ended || ch.live || ch.gone) return;
    ch.live = true;
    this.#channels.set(ch.topic, ch);
    this.#o.counters.channels += 1;
    this.#send(ch.joinRef, ch.ref, ch.topic, 'phx_reply', { status: 'ok', response });
  }

  deliver(ch: JoinedChannel, event: TopicEvent): void {
    if (this.#ended || !ch.live) return;
    const { softBufferBytes, hardBufferBytes } = this.#o.limits;
    const buffered = this.#transport.buffered();
    if (buffered > hardBufferBytes) {
      this.fail(CLOSE_INTERNAL, 'slow consumer');
      return;
    }
    const pending = this.#pending;
    if (event.class !== 'latest') {
      // Never dropped or conflated; a held-back older event of the same key goes first, in order.
      if (pending) {
        const held = heldKey(ch.topic, event.key);
        const older = pending.get(held);
        if (older) {
          pending.delete(held);
          this.#sendEvent(older);
        }
      }
      this.#sendEvent(event);
      return;
    }
    if (buffered > softBufferBytes) {
      const held = heldKey(ch.topic, event.key);
      if (!pending) {
        this.#pending = new Map([[held, event]]);
        this.#o.drainWatch.watch(this);
      } else {
        if (pending.has(held)) this.#o.counters.conflated += 1;
        pending.set(held, event);
      }
      return;
    }
    if (pending) {
      if (pending.delete(heldKey(ch.topic, event.key))) this.#o.counters.conflated += 1;
      this.#flushPending();
    }
    this.#sendEvent(event);
  }

  crash(ch: JoinedChannel): void {
    if (ch.gone) return;
    if (!ch.live) {
      ch.gone = true; // lost while joining: the join's end decides what the client hears
      return;
    }
    this.#remove(ch);
    this.#send(ch.joinRef, ch.joinRef, ch.topic, 'phx_error', CHANNEL_CRASH);
  }

  // ---- inbound ----

  #allow(): boolean {
    const rate = this.#o.limits.maxMessagesPerSecond;
    const now = performance.now();
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#tokensAt) * rate) / 1000);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #dispatch(msg: Message): void {
    let pending: Promise<void> | undefined;
    try {
      pending = this.#handle(msg);
    } catch (err) {
      this.#o.log.error({ err }, 'socket message handling failed');
    }
    if (pending) {
      this.#busy = true;
      pending.then(this.#resume, this.#resumeAfterError);
    }
  }

  #afterAsync(): void {
    this.#busy = false;
    while (!this.#busy && !this.#ended && this.#queueHead < this.#queue.length) {
      const msg = this.#queue[this.#queueHead++];
      this.#dispatch(msg);
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    }
    if (!this.#busy) this.#wakeIdle();
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    if (waiters.length === 0) return;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  #handle(msg: Message): Promise<void> | undefined {
    if (msg.event === 'phx_join') return this.#join(msg);
    const ch = typeof msg.topic === 'string' ? this.#channels.get(msg.topic) : undefined;
    if (msg.event === 'phx_leave') {
      if (!ch) this.#send(msg.joinRef, msg.ref, msg.topic, 'phx_reply', OK_EMPTY);
      else if (!this.#stale(ch, msg)) this.#leave(ch, msg);
      return;
    }
    if (!ch) {
      this.#unmatched(msg);
      return;
    }
    if (this.#stale(ch, msg)) return;
    let reply: ReturnType<ChannelHandler['handleIn']>;
    try {
      reply = ch.handler.handleIn(msg.event, msg.payload);
    } catch (err) {
      this.#o.log.error({ err, topic: ch.topic }, 'channel crashed handling an event');
      this.crash(ch);
      return;
    }
    if (reply) this.#send(ch.replyRef, msg.ref, ch.topic, 'phx_reply', reply);
  }

  /** A message for a joined topic from an older join: silently dropped (3.3). */
  #stale(ch: JoinedChannel, msg: Message): boolean {
    return msg.joinRef !== null && msg.joinRef !== ch.joinRef;
  }

  #unmatched(msg: Message): void {
    this.#send(null, msg.ref, msg.topic, 'phx_reply', UNMATCHED);
  }

  #join(msg: Message): Promise<void> | undefined {
    const topic = msg.topic;
    const factory = typeof topic === 'string' ? this.#o.router.match(topic) : undefined;
    if (typeof topic !== 'string' || !factory) {
      this.#unmatched(msg);
      return;
    }
    const old = this.#channels.get(topic);
    if (!old && this.#channels.size >= this.#o.limits.maxChannels) {
      this.#send(msg.joinRef, msg.ref, topic, 'phx_reply', TOO_MANY);
      return;
    }
    // A duplicate join replaces the old channel: it ends now (no phx_error), and its
    // phx_close follows the new join's reply (4.2).
    if (old) this.#remove(old);
    const ch = new JoinedChannel(this, topic, msg);
    try {
      ch.handler = factory(topic, this.userId);
    } catch (err) {
      this.#o.log.error({ err, topic }, 'channel could not be created');
      this.#send(msg.joinRef, msg.ref, topic, 'phx_reply', {
        status: 'error',
        response: JOIN_CRASHED.response,
      });
      if (old) this.#send(old.joinRef, old.joinRef, topic, 'phx_close', EMPTY);
      return;
    }
    return this.#runJoin(ch, msg, old);
  }

  async #runJoin(ch: JoinedChannel, msg: Message, old: JoinedChannel | undefined): Promise<void> {
    this.#joining = ch;
    let result: JoinResult;
    try {
      result = await ch.handler.join(msg.payload, ch);
    } catch (err) {
      this.#o.log.warn({ err, topic: ch.topic }, 'join crashed');
      result = JOIN_CRASHED;
    }
    this.#joining = null;
    if (this.#ended) {
      this.#terminate(ch);
      return;
    }
    if (result.ok) {
      if (!ch.live && !ch.gone) this.accept(ch, EMPTY);
      else if (ch.gone && !ch.live) {
        // Its state was lost before the reply went out: the client learns it as a crashed join.
        this.#terminate(ch);
        this.#send(msg.joinRef, msg.ref, ch.topic, 'phx_reply', {
          status: 'error',
          response: JOIN_CRASHED.response,
        });
      }
    } else if (ch.live) {
      this.crash(ch); // accepted, then failed: the client rejoins
    } else {
      ch.gone = true;
      this.#terminate(ch);
      this.#send(msg.joinRef, msg.ref, ch.topic, 'phx_reply', { status: 'error', response: result.response });
    }
    if (old) this.#send(old.joinRef, old.joinRef, ch.topic, 'phx_close', EMPTY);
  }

  #leave(ch: JoinedChannel, msg: Message): void {
    this.#remove(ch);
    this.#send(ch.replyRef, msg.ref, ch.topic, 'phx_reply', OK_EMPTY);
    this.#send(ch.joinRef, ch.joinRef, ch.topic, 'phx_close', EMPTY);
  }

  /** Takes a channel out of the table and ends it; its conflated progress goes with it. */
  #remove(ch: JoinedChannel): void {
    if (this.#channels.get(ch.topic) === ch) {
      this.#channels.delete(ch.topic);
      this.#o.counters.channels -= 1;
    }
    ch.live = false;
    ch.gone = true;
    const pending = this.#pending;
    if (pending) for (const [held, event] of pending) if (event.topic === ch.topic) pending.delete(held);
    this.#terminate(ch);
  }

  #terminate(ch: JoinedChannel): void {
    try {
      ch.handler?.terminate();
    } catch (err) {
      this.#o.log.error({ err, topic: ch.topic }, 'channel terminate failed');
    }
  }

  // ---- outbound ----

  #send(joinRef: unknown, ref: unknown, topic: unknown, event: string, payload: unknown): void {
    if (this.#ended) return;
    // Replies are never dropped, so a client that asks without reading hits the hard limit too.
    if (this.#transport.buffered() > this.#o.limits.hardBufferBytes) {
      this.fail(CLOSE_INTERNAL, 'slow consumer');
      return;
    }
    this.#transport.write(this.#ser.encode(joinRef, ref, topic, event, payload));
  }

  /** Broadcast form [null, null, T, E, P], encoded once per serializer and shared by every subscriber. */
  #sendEvent(event: TopicEvent): void {
    const key = this.#ser.name;
    let frame = event.frames[key];
    if (frame === undefined) {
      frame = this.#ser.encode(null, null, event.topic, event.name, event.payload);
      event.frames[key] = frame;
    }
    this.#o.counters.eventsOut += 1;
    this.#transport.write(frame);
  }

  #flushPending(): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = null;
    if (this.#writable.length === 0) this.#o.drainWatch.unwatch(this);
    for (const event of pending.values()) this.#sendEvent(event);
  }
}
