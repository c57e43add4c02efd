// Liveness: this process heartbeats its row in taskwire.nodes (with its queue worker ids); any
// live process hands the jobs of a node silent for longer than the threshold back to the queue
// through graphile-worker's own force_unlock_workers, so they run again within seconds instead
// of the library's 4 hours. A restart under the same node id frees its old jobs at once.

import type pg from 'pg';
import type { Logger } from 'pino';

export interface LivenessOptions {
  pool: pg.Pool;
  nodeId: string;
  workerIds: () => string[];
  heartbeatMs: number;
  deadAfterMs: number;
  log: Logger;
  schema?: string;
  /** What this node reports with each heartbeat (for GET /api/stats): its open sockets, what it runs. */
  report?: () => { sockets: number; info: Record<string, unknown> };
  /** Told how many worker ids were unlocked, and whose. */
  onRescue?: (nodes: string[], workerIds: string[]) => void;
}

export class Liveness {
  readonly #o: LivenessOptions;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  lastBeatOk = false;

  constructor(opts: LivenessOptions) {
    this.#o = opts;
  }

  get #schema(): string {
    return this.#o.schema ?? 'graphile_worker';
  }

  /** Frees what an earlier run of this node left locked, then starts heartbeating. */
  async start(): Promise<void> {
    const { rows } = await this.#o.pool.query<{ worker_ids: string[] }>(
      'delete from taskwire.nodes where id = $1 returning worker_ids',
      [this.#o.nodeId],
    );
    const previous = rows.flatMap((r) => r.worker_ids);
    if (previous.length) await this.#unlock([this.#o.nodeId], previous);
    await this.#beat();
    this.#timer = setInterval(() => {
      if (!this.#beating) this.#beating = this.#beat().finally(() => (this.#beating = undefined));
    }, this.#o.heartbeatMs);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    const { pool, nodeId } = this.#o;
    try {
      const report = this.#o.report?.() ?? { sockets: 0, info: {} };
      await pool.query(
        `insert into taskwire.nodes (id, worker_ids, sockets, info) values ($1, $2, $3, $4)
         on conflict (id) do update set heartbeat_at = now(), worker_ids = excluded.worker_ids, stopped_at = null,
           sockets = excluded.sockets, info = excluded.info`,
        [nodeId, this.#o.workerIds(), report.sockets, JSON.stringify(report.info)],
      );
      this.lastBeatOk = true;
      await this.rescue();
    } catch (err) {
      this.lastBeatOk = false;
      this.#o.log.warn({ err }, 'liveness heartbeat failed');
    }
  }

  /** Unlocks the jobs of every node silent past the threshold; returns the nodes rescued. */
  async rescue(): Promise<string[]> {
    const { rows } = await this.#o.pool.query<{ id: string; worker_ids: string[] }>(
      `delete from taskwire.nodes
        where id <> $1 and heartbeat_at < now() - make_interval(secs => $2::float8 / 1000)
       returning id, worker_ids`,
      [this.#o.nodeId, this.#o.deadAfterMs],
    );
    if (rows.length === 0) return [];
    const nodes = rows.map((r) => r.id);
    await this.#unlock(
      nodes,
      rows.flatMap((r) => r.worker_ids),
    );
    return nodes;
  }

  async #unlock(nodes: string[], workerIds: string[]): Promise<void> {
    if (workerIds.length) {
      await this.#o.pool.query(`select ${this.#schema}.force_unlock_workers($1::text[])`, [workerIds]);
    }
    this.#o.log.warn({ nodes, worker_ids: workerIds }, 'rescued the jobs of stopped nodes');
    this.#o.onRescue?.(nodes, workerIds);
  }

  /** Stops heartbeating and removes this node's row (its jobs were released by the worker). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#beating;
    await this.#o.pool.query('delete from taskwire.nodes where id = $1', [this.#o.nodeId]).catch(() => {});
  }
}
