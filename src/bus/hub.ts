// One topic's local subscribers on this node (design.md "local hub"). The same event object goes
// to each; a subscriber that throws is dropped alone.
import type { TopicEvent, TopicSubscriber } from './event.ts';

export class LocalHub {
  readonly topic: string;
  readonly subscribers = new Set<TopicSubscriber>();
  /** The other nodes whose events fed this hub: a feed from one of them may break (PubSub's feedBroken). */
  readonly sources = new Set<string>();

  constructor(topic: string) {
    this.topic = topic;
  }

  publish(event: TopicEvent, onError: (err: unknown) => void): void {
    for (const sub of this.subscribers) {
      try {
        sub.deliver(event);
      } catch (err) {
        this.subscribers.delete(sub);
        onError(err);
      }
    }
  }

  /** Every subscriber learns its feed is gone and is dropped. */
  lose(onError: (err: unknown) => void): void {
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const sub of subs) {
      try {
        sub.lost(this.topic);
      } catch (err) {
        onError(err);
      }
    }
  }
}
