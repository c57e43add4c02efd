// Retention (TASKWIRE_RETENTION): finished tasks older than the retention, and the rows that
// belong to them (db/sql/prune.ts names the tables), are deleted in small batches, one node at a
// time (an advisory lock per batch), oldest first. 0 keeps everything. Like Oban's pruner: small,
// independent, optional.
import type pg from 'pg';
import type { Logger } from 'pino';
import { pruneBatch, type TaskChildTable } from '../db/index.ts';

export interface PrunerOptions {
  pool: pg.Pool;
  /** Finished tasks older than this are deleted; 0: never. */
  retentionSeconds: number;
  intervalMs: number;
  /** Tasks per batch (each batch is one short transaction). */
  batchSize: number;
  log: Logger;
  /** Told the rows deleted per table after each batch (the metric). */
  onPruned?: (table: string, rows: number) => void;
  /** Override the tables pruned with their tasks (tests). */
  children?: readonly TaskChildTable[];
}

/** Batches one run may delete before it yields to the next interval. */
const MAX_BATCHES_PER_RUN = 200;

export class Pruner {
  readonly #o: PrunerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;

  constructor(opts: PrunerOptions) {
    this.#o = opts;
  }

  start(): void {
    if (this.#o.retentionSeconds <= 0 || this.#timer) return;
    this.#timer = setInterval(() => {
      this.#running ??= this.runOnce()
        .catch((err: unknown) => this.#o.log.warn({ err }, 'pruning failed; trying again later'))
        .finally(() => (this.#running = undefined));
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /**
   * Prunes until nothing is old enough (or the run's bound). Returns the rows deleted per table,
   * or null when another node was pruning.
   */
  async runOnce(): Promise<Record<string, number> | null> {
    const { pool, retentionSeconds, batchSize, children } = this.#o;
    if (retentionSeconds <= 0) return {};
    const total: Record<string, number> = {};
    for (let batch = 0; batch < MAX_BATCHES_PER_RUN && !(batch > 0 && this.#stopped); batch++) {
      const deleted = await pruneBatch(pool, retentionSeconds, batchSize, children);
      if (deleted === null) return batch === 0 ? null : total;
      for (const [table, rows] of Object.entries(deleted)) {
        total[table] = (total[table] ?? 0) + rows;
        if (rows > 0) this.#o.onPruned?.(table, rows);
      }
      if ((deleted['taskwire.tasks'] ?? 0) < batchSize) break;
    }
    if ((total['taskwire.tasks'] ?? 0) > 0)
      this.#o.log.info({ pruned: total }, 'pruned finished tasks past retention');
    return total;
  }
}
