// Write-behind snapshots: actors with unsaved progress are collected and written together, one
// multi-row statement per flush (at most one write per task per interval, whatever the rate of
// progress). A flush the database can't take keeps the actors dirty for the next tick; one it
// refuses for a single snapshot is split, so that snapshot never holds back the others.

import type pg from 'pg';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, type Snapshot, writeSnapshots } from '../db/index.ts';
import type { TaskActor } from './actor.ts';

export interface SnapshotterOptions {
  pool: pg.Pool;
  intervalMs: number;
  log: Logger;
  /** Called after each flush with its size and duration (metrics). */
  onFlush?: (count: number, ms: number) => void;
}

export class Snapshotter {
  readonly #opts: SnapshotterOptions;
  #dirty = new Set<TaskActor>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  failures = 0;

  constructor(opts: SnapshotterOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  markDirty(actor: TaskActor): void {
    this.#dirty.add(actor);
  }

  get pending(): number {
    return this.#dirty.size;
  }

  /** Writes every dirty running actor; concurrent calls share one flush. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#dirty.size === 0) return Promise.resolve();
    this.#flushing = this.#flushOnce().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    const batch = this.#dirty;
    this.#dirty = new Set();
    const snapshots: Snapshot[] = [];
    const actors: TaskActor[] = [];
    for (const actor of batch) {
      const snapshot = actor.pendingSnapshot();
      if (!snapshot) continue;
      snapshots.push(snapshot);
      actors.push(actor);
    }
    if (snapshots.length === 0) return;
    const started = performance.now();
    try {
      await writeSnapshots(this.#opts.pool, snapshots);
      snapshots.forEach((snap, i) => {
        actors[i].snapshotSaved(snap);
      });
      this.#opts.onFlush?.(snapshots.length, performance.now() - started);
    } catch (err) {
      this.failures += 1;
      if (isDatabaseUnavailable(err) || snapshots.length === 1) {
        // Unreachable (or a lone one refused): keep them dirty, the next tick tries again.
        for (const actor of actors) this.#dirty.add(actor);
        this.#opts.log.warn({ err, count: snapshots.length }, 'snapshot flush failed; will retry');
        return;
      }
      // One refused snapshot must not hold back the others: each alone; the refused stay dirty.
      await Promise.all(
        snapshots.map((snap, i) =>
          writeSnapshots(this.#opts.pool, [snap]).then(
            () => actors[i].snapshotSaved(snap),
            (alone: unknown) => {
              this.#dirty.add(actors[i]);
              this.#opts.log.warn({ err: alone, task_id: snap.taskId }, 'snapshot refused; will retry');
            },
          ),
        ),
      );
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
