// The seam between taskwire's cluster protocol and a message engine: a transport carries opaque
// text messages on named channels between the nodes of one cluster, and nothing more. Interest,
// acknowledgements, membership and what a message means live above it (cluster.ts); engines'
// clients are libraries, never hand-written. Adapters: transports/memory.ts, postgres.ts,
// nats.ts, redis.ts (Oban's notifier behaviour and its notifiers, in TypeScript).

/** What a transport tells the cluster layer. Called on the event loop, never re-entrantly. */
export interface TransportHandlers {
  /**
   * Messages that arrived on `channel` (a logical name, without the namespace). Messages one
   * publisher published on one channel arrive in the order it published them, none twice.
   */
  deliver(channel: string, messages: string[]): void;
  /** The engine is reachable and every channel is subscribed again (after a reconnect). */
  up(): void;
  /** The engine was lost: messages published or sent to this node meanwhile may be lost. */
  down(err: Error): void;
}

export interface TransportStats {
  /** Engine-level messages (frames, each carrying one or more of our messages). */
  framesOut: number;
  framesIn: number;
  bytesOut: number;
  bytesIn: number;
  /** Our messages handed to publish() and handed to deliver(). */
  messagesOut: number;
  messagesIn: number;
  /** Successful reconnects after a loss. */
  reconnects: number;
  /** Frames that could not be read (malformed, or a reference that was gone): counted, dropped. */
  dropped: number;
  /**
   * Frames another publisher sent on a subscribed channel that never arrived, seen as a jump in
   * that publisher's frame counter (e.g. lost while the engine or this node was away).
   */
  gaps?: number;
  /** Messages handed to publish() that never reached the engine (it was away, or the send failed). */
  unsent?: number;
}

export type TransportKind = 'memory' | 'postgres' | 'nats' | 'redis';

export interface BusTransport {
  readonly kind: TransportKind;
  /**
   * Connects and subscribes to `channels` (logical names such as `all` or `node.<id>`; the
   * transport maps them into its namespace and the engine's naming rules). Resolves once every
   * channel is subscribed; rejects with a clear message when the engine can't be reached within
   * its connect timeout. After that it reconnects by itself, calling `down` and then `up`.
   */
  start(channels: string[], handlers: TransportHandlers): Promise<void>;
  /**
   * Queues `messages` for every subscriber of `channel`, this node included. Never blocks and
   * never throws: while the engine is away the messages are dropped (the cluster layer was told
   * `down`). Each message is one JSON text (no raw newline); the transport packs many into as
   * few engine messages as the engine's size limit allows, and carries one too large for that
   * limit some other way (PostgreSQL: by reference), so any message size works.
   */
  publish(channel: string, messages: string[]): void;
  readonly connected: boolean;
  stats(): TransportStats;
  /** Flushes what is queued (bounded wait), unsubscribes and closes. Idempotent. */
  stop(): Promise<void>;
}
