// Group commit: items that arrive while a write is in flight wait and go out together in the
// next one (one statement, one commit). The first item after a quiet spell goes out at once; one
// that comes less than FREQUENT_MS after the last write ended waits LINGER_MS for company: a
// steady moderate rate otherwise writes small batches back to back (issue 14: at 60 % of the peak
// rate the end-to-end p99 went from 210 to 121 ms, bench/README.md). A lone request pays nothing.
// If a shared write fails, each item of it is tried alone, so one bad item fails only its own
// caller.

/** How long an item that comes while writes are frequent waits for others. */
export const LINGER_MS = 2;
/** Writes are frequent while the last one ended less than this long ago. */
export const FREQUENT_MS = 10;

export class GroupCommit<Item, Result> {
  readonly #write: (items: Item[]) => Promise<Result[]>;
  readonly #maxBatch: number;
  readonly #lingerMs: number;
  #waiting: Array<{ item: Item; resolve: (r: Result) => void; reject: (e: unknown) => void }> = [];
  #writing = false;
  /** When the last write ended (Date.now()). */
  #lastEnd = Number.NEGATIVE_INFINITY;

  /** `write` must return one result per item, in order. */
  constructor(write: (items: Item[]) => Promise<Result[]>, maxBatch = 500, lingerMs = LINGER_MS) {
    this.#write = write;
    this.#maxBatch = maxBatch;
    this.#lingerMs = lingerMs;
  }

  submit(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#writing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      if (this.#lingerMs > 0 && Date.now() - this.#lastEnd < FREQUENT_MS)
        await new Promise((resolve) => setTimeout(resolve, this.#lingerMs));
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0, this.#maxBatch);
        try {
          const results = await this.#write(batch.map((b) => b.item));
          for (const [i, b] of batch.entries()) b.resolve(results[i]);
        } catch (err) {
          if (batch.length === 1) batch[0].reject(err);
          else
            await Promise.all(batch.map((b) => this.#write([b.item]).then(([r]) => b.resolve(r), b.reject)));
        }
        this.#lastEnd = Date.now();
      }
    } finally {
      this.#writing = false;
    }
  }
}
