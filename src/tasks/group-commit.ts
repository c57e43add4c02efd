// Group commit: the first item goes out at once; items that arrive while a write is in flight
// wait and go out together in the next one (one statement, one commit). If a shared write
// fails, each item of it is tried alone, so one bad item fails only its own caller.
export class GroupCommit<Item, Result> {
  readonly #write: (items: Item[]) => Promise<Result[]>;
  readonly #maxBatch: number;
  #waiting: Array<{ item: Item; resolve: (r: Result) => void; reject: (e: unknown) => void }> = [];
  #writing = false;

  /** `write` must return one result per item, in order. */
  constructor(write: (items: Item[]) => Promise<Result[]>, maxBatch = 500) {
    this.#write = write;
    this.#maxBatch = maxBatch;
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
      }
    } finally {
      this.#writing = false;
    }
  }
}
