// Write-behind snapshots: actors with unsaved progress are collected and written together, one
// multi-row statement per flush (at most one write per task per interval, whatever the rate of
// progress). A flush the database can't take keeps the actors dirty for the next tick; one it
// refuses for a single snapshot is split, so that snapshot never holds back the others.

import type pg from 'pg';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, type Snapshot, writeSnapshots } from '../db/index.ts';
import type { TaskActor } from './actor.ts';
import { WriteBehind } from './write-behind.ts';

export interface SnapshotterOptions {
  pool: pg.Pool;
  intervalMs: number;
  log: Logger;
  /** Called after each flush with its size and duration (metrics). */
  onFlush?: (count: number, ms: number) => void;
}

export class Snapshotter {
  readonly #opts: SnapshotterOptions;
  readonly #behind: WriteBehind;
  failures = 0;

  constructor(opts: SnapshotterOptions) {
    this.#opts = opts;
    this.#behind = new WriteBehind(opts.intervalMs, (batch) => this.#flushOnce(batch));
  }

  start(): void {
    this.#behind.start();
  }

  markDirty(actor: TaskActor): void {
    this.#behind.markDirty(actor);
  }

  get pending(): number {
    return this.#behind.pending;
  }

  /** Writes every dirty running actor; concurrent calls share one flush. */
  flush(): Promise<void> {
    return this.#behind.flush();
  }

  async #flushOnce(batch: Set<TaskActor>): Promise<void> {
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
        for (const actor of actors) this.#behind.markDirty(actor);
        this.#opts.log.warn({ err, count: snapshots.length }, 'snapshot flush failed; will retry');
        return;
      }
      // One refused snapshot must not hold back the others: each alone; the refused stay dirty.
      await Promise.all(
        snapshots.map((snap, i) =>
          writeSnapshots(this.#opts.pool, [snap]).then(
            () => actors[i].snapshotSaved(snap),
            (alone: unknown) => {
              this.#behind.markDirty(actors[i]);
              this.#opts.log.warn({ err: alone, task_id: snap.taskId }, 'snapshot refused; will retry');
            },
          ),
        ),
      );
    }
  }

  async stop(): Promise<void> {
    await this.#behind.stop();
  }
}
