// What travels on a topic: an event with its delivery class, encoded at most once per serializer
// however many subscribers get it. The bus knows topics and classes, never what an event means.
import type { DeliveryClass } from '../contract/index.ts';

export type { DeliveryClass };

export interface TopicEvent {
  readonly topic: string;
  readonly name: string;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly class: DeliveryClass;
  /**
   * What conflation and ordering are per: several keys (tasks) may share one topic (a user's).
   * A slow reader keeps only the newest `latest` event of each key.
   */
  readonly key: string;
  /** Position within the key: a task's seq, or for `ordered` events the chunk index. */
  readonly seq: number;
  /** Wire encodings memoised by serializer name; filled by the first subscriber that encodes it. */
  readonly frames: Record<string, string | undefined>;
}

export function topicEvent(
  topic: string,
  name: string,
  payload: Record<string, unknown>,
  cls: DeliveryClass,
  key: string,
  seq: number,
): TopicEvent {
  return { topic, name, payload, class: cls, key, seq, frames: {} };
}

/** A receiver of a topic's events (a channel on a socket). Called synchronously; must not throw. */
export interface TopicSubscriber {
  deliver(event: TopicEvent): void;
  /** The topic's feed on this node can no longer be trusted (its source was lost): rejoin. */
  lost(topic: string): void;
}
