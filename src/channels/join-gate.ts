// The window between subscribing to a topic and replying to the join: events that arrive in it
// are held, and once the reply's state is known, only events newer than it go out (per key: a
// user's topic carries many tasks). After that, any event not newer than the last one sent of its
// key (a duplicate, or a stale one from a node that lost its attempt) is dropped. Output chunks
// (`ordered`) are ordered by index, not seq: their channel filters them itself.
import type { TopicEvent } from '../bus/index.ts';

/**
 * Events held while a join is pending. Past this, held progress is conflated (only the newest of
 * each key kept); if lifecycle events alone pass it, the join fails (the client retries).
 */
const MAX_HELD = 10_000;
/** Keys remembered per channel (a user topic with many tasks): the oldest are forgotten first. */
const MAX_KEYS = 10_000;

export class JoinGate {
  #held: TopicEvent[] | null = [];
  readonly #seqs = new Map<string, number>();
  /** The key set last (the newest in the map's order). */
  #newest: string | undefined;
  overflowed = false;

  /** Holds the event while the join is pending; after it, true when it should go out. */
  admit(event: TopicEvent): boolean {
    const held = this.#held;
    if (held === null) return this.#newer(event);
    held.push(event);
    if (held.length > MAX_HELD) this.#compact(held);
    return false;
  }

  /** Keeps every lifecycle and output event and the newest progress of each key. */
  #compact(held: TopicEvent[]): void {
    const newest = new Map<string, TopicEvent>();
    for (const e of held) if (e.class === 'latest') newest.set(e.key, e);
    const kept = held.filter((e) => e.class !== 'latest' || newest.get(e.key) === e);
    if (kept.length > MAX_HELD) this.overflowed = true;
    this.#held = this.overflowed ? [] : kept;
  }

  /** The join replied with these states: returns the held events newer than them, in order. */
  open(states: Iterable<{ key: string; seq: number }>): TopicEvent[] {
    for (const { key, seq } of states) this.#remember(key, seq);
    const held = this.#held ?? [];
    this.#held = null;
    return held.filter((event) => this.#newer(event));
  }

  #newer(event: TopicEvent): boolean {
    if (event.class === 'ordered') return true;
    const last = this.#seqs.get(event.key);
    if (last !== undefined && event.seq <= last) return false;
    this.#remember(event.key, event.seq);
    return true;
  }

  #remember(key: string, seq: number): void {
    // Re-inserted so the map's order is by last use; a key that is already the newest (a task
    // channel's only key, or a user topic's busiest) just takes its new seq.
    if (key === this.#newest) {
      this.#seqs.set(key, seq);
      return;
    }
    this.#newest = key;
    this.#seqs.delete(key);
    this.#seqs.set(key, seq);
    if (this.#seqs.size > MAX_KEYS) this.#seqs.delete(this.#seqs.keys().next().value!);
  }
}
