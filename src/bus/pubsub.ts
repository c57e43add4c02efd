// Topic-keyed broadcast for one node (Phoenix.PubSub): subscribers join a named topic, publishers
// publish on it without knowing who listens, and the same call reaches the other nodes' hubs
// through the cluster when they want the topic. One local hub per topic with local subscribers.
import type { Logger } from 'pino';
import type { Cluster } from './cluster.ts';
import type { TopicEvent, TopicSubscriber } from './event.ts';
import { LocalHub } from './hub.ts';

export interface PubSubOptions {
  /** Absent for a lone node (`TASKWIRE_BUS=memory`): nothing leaves the process. */
  cluster?: Cluster;
  log: Logger;
  /**
   * True when this node itself produces the topic's events (it runs the task): such a feed
   * survives a bus outage. Others are lost (phx_error) while the bus is down.
   */
  isLocalFeed?: (topic: string) => boolean;
}

const RESOLVED = Promise.resolve();

export class PubSub {
  readonly #hubs = new Map<string, LocalHub>();
  readonly #cluster: Cluster | undefined;
  readonly #log: Logger;
  readonly #isLocalFeed: (topic: string) => boolean;
  readonly #onSubscriberError = (err: unknown) =>
    this.#log.error({ err }, 'a topic subscriber threw; it was dropped');
  /** Told when the bus goes down or comes back (for /readyz and joins). */
  onAvailability: ((up: boolean) => void) | undefined;

  constructor(opts: PubSubOptions) {
    this.#cluster = opts.cluster;
    this.#log = opts.log;
    this.#isLocalFeed = opts.isLocalFeed ?? (() => false);
  }

  get cluster(): Cluster | undefined {
    return this.#cluster;
  }

  /** False while the bus is down: remote feeds can't be trusted, so joins that need one wait. */
  get available(): boolean {
    return this.#cluster?.up ?? true;
  }

  /** Starts the cluster (when there is one), feeding remote events into the local hubs. */
  async start(expectPeers: string[] = []): Promise<void> {
    await this.#cluster?.start(
      {
        event: (event, from) => {
          const hub = this.#hubs.get(event.topic);
          if (!hub) return;
          hub.sources.add(from);
          hub.publish(event, this.#onSubscriberError);
        },
        availability: (up) => {
          if (!up)
            for (const topic of [...this.#hubs.keys()]) if (!this.#isLocalFeed(topic)) this.lose(topic);
          this.onAvailability?.(up);
        },
        feedBroken: (node, wide) => {
          // `wide`: any remote feed may have missed the node's events, also one it had not fed yet.
          for (const [topic, hub] of [...this.#hubs]) {
            if (hub.sources.has(node) || (wide && !this.#isLocalFeed(topic))) this.lose(topic);
          }
        },
      },
      expectPeers,
    );
  }

  async stop(): Promise<void> {
    await this.#cluster?.stop();
  }

  /**
   * Subscribes at once, locally. The promise resolves when every other node knows this one wants
   * the topic: read the topic's state after that, and no later event is missed.
   */
  subscribe(topic: string, sub: TopicSubscriber): Promise<void> {
    let hub = this.#hubs.get(topic);
    if (!hub) {
      hub = new LocalHub(topic);
      this.#hubs.set(topic, hub);
    }
    hub.subscribers.add(sub);
    return this.#cluster ? this.#cluster.want(topic) : RESOLVED;
  }

  unsubscribe(topic: string, sub: TopicSubscriber): void {
    const hub = this.#hubs.get(topic);
    if (!hub?.subscribers.delete(sub) || hub.subscribers.size > 0) return;
    this.#hubs.delete(topic);
    this.#cluster?.unwant(topic);
  }

  /** Someone, here or on another node, listens on the topic (else an event need not be built). */
  wants(topic: string): boolean {
    return this.#hubs.has(topic) || (this.#cluster?.remoteWants(topic) ?? false);
  }

  /** Local subscribers of the topic on this node. */
  subscribers(topic: string): number {
    return this.#hubs.get(topic)?.subscribers.size ?? 0;
  }

  publish(event: TopicEvent): void {
    this.#hubs.get(event.topic)?.publish(event, this.#onSubscriberError);
    this.#cluster?.forward(event);
  }

  /** The topic's feed on this node is broken: its subscribers are told (phx_error) and dropped. */
  lose(topic: string): void {
    const hub = this.#hubs.get(topic);
    if (!hub) return;
    this.#hubs.delete(topic);
    this.#cluster?.unwant(topic);
    hub.lose(this.#onSubscriberError);
  }

  /** Topics with local subscribers (tests and metrics). */
  topics(): string[] {
    return [...this.#hubs.keys()];
  }
}
