// The window between subscribing to a topic and replying to the join: events that arrive in it
// are held, and once the reply's state is known, only events newer than it go out (per key: a
// user's topic carries many tasks). After that, any event not newer than the last one sent of its
// key (a duplicate, or a stale one from a node that lost its attempt) is dropped. Output chunks
// (`ordered`) are ordered by index, not seq: their channel filters them itself.
import type { TopicEvent } from '../bus/index.ts';

/** Events held while a join is pending; past this the join fails (the client retries). */
const MAX_HELD = 10_000;
/** Keys remembered per channel (a user topic with many tasks): the oldest are forgotten first. */
const MAX_KEYS = 10_000;

export class JoinGate {
  #held: Array<TopicEvent | null> | null = [];
  /** key -> index in #held of its last `latest` event (so a newer one replaces it). */
  #heldLatest = new Map<string, number>();
  readonly #seqs = new Map<string, number>();
  overflowed = false;

  /** Holds the event while the join is pending; after it, true when it should go out. */
  admit(event: TopicEvent): boolean {
    const held = this.#held;
    if (held === null) return this.#newer(event);
    if (event.class === 'latest') {
      const at = this.#heldLatest.get(event.key);
      if (at !== undefined) held[at] = null;
      this.#heldLatest.set(event.key, held.length);
    }
    if (held.length >= MAX_HELD) this.overflowed = true;
    else held.push(event);
    return false;
  }

  /** The join replied with these states: returns the held events newer than them, in order. */
  open(states: Iterable<{ key: string; seq: number }>): TopicEvent[] {
    for (const { key, seq } of states) this.#remember(key, seq);
    const held = this.#held ?? [];
    this.#held = null;
    this.#heldLatest = new Map();
    const out: TopicEvent[] = [];
    for (const event of held) if (event && this.#newer(event)) out.push(event);
    return out;
  }

  #newer(event: TopicEvent): boolean {
    if (event.class === 'ordered') return true;
    const last = this.#seqs.get(event.key);
    if (last !== undefined && event.seq <= last) return false;
    this.#remember(event.key, event.seq);
    return true;
  }

  #remember(key: string, seq: number): void {
    this.#seqs.delete(key);
    this.#seqs.set(key, seq);
    if (this.#seqs.size > MAX_KEYS) this.#seqs.delete(this.#seqs.keys().next().value!);
  }
}
