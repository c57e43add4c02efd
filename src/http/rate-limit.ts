// A fixed-window counter per key (task creations per user per minute). In memory: a limit per
// process, which is what a single node needs; windows of idle keys are swept, never leaked.
export class RateLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  #windowStart = 0;
  #counts = new Map<string, number>();

  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Counts one hit; returns 0 when allowed, else milliseconds until the window resets. */
  hit(key: string, now = Date.now()): number {
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now - ((now - this.#windowStart) % this.#windowMs);
      if (now - this.#windowStart >= this.#windowMs) this.#windowStart = now;
      this.#counts = new Map();
    }
    const count = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, count);
    return count > this.#limit ? this.#windowStart + this.#windowMs - now : 0;
  }
}
