// The timing half of a write-behind: a set of dirty actors, one shared timer, and flushes that
// never overlap (a caller during a flush shares it). What a flush writes is its owner's business
// (snapshotter.ts, output-writer.ts).
import type { TaskActor } from './actor.ts';

export class WriteBehind {
  readonly #intervalMs: number;
  readonly #write: (batch: Set<TaskActor>) => Promise<void>;
  #dirty = new Set<TaskActor>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  /** `write` gets the actors dirty at that moment; it may mark some dirty again (a retry). */
  constructor(intervalMs: number, write: (batch: Set<TaskActor>) => Promise<void>) {
    this.#intervalMs = intervalMs;
    this.#write = write;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.flush().catch(() => {}); // the writer logs its own failures
    }, this.#intervalMs);
    this.#timer.unref();
  }

  markDirty(actor: TaskActor): void {
    this.#dirty.add(actor);
  }

  get pending(): number {
    return this.#dirty.size;
  }

  /** The flush under way, if any. */
  get flushing(): Promise<void> | undefined {
    return this.#flushing;
  }

  /** Writes every dirty actor; concurrent calls share one flush. Rejects if the write did. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#dirty.size === 0) return Promise.resolve();
    const batch = this.#dirty;
    this.#dirty = new Set();
    this.#flushing = this.#write(batch).finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  /** Stops the timer and writes what is left (failures are the writer's to log). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(() => {});
  }
}
