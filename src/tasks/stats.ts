// How the system is doing (GET /api/stats, the `stats` event of `admin:tasks`): reads the figures
// of db/sql/stats.ts and shapes them as the contract's Stats. StatsTicker computes them once per
// interval on this node for every admin channel watching, and only while one is.
import type pg from 'pg';
import type { Logger } from 'pino';
import {
  parseStatsWindow,
  type Stats,
  type StatusCounts,
  TASK_STATUSES,
  type TaskStatus,
  type ThroughputBucket,
  type TypeStats,
} from '../contract/index.ts';
import {
  finishedInWindow,
  inFlightByType,
  inFlightCounts,
  nodeStats,
  ownerQueue,
  withSnapshot,
} from '../db/index.ts';

export interface StatsReaderOptions {
  pool: pg.Pool;
  nodeId: string;
  nodeDeadAfterMs: number;
  /** This node's open sockets now (other nodes' come from their last heartbeat). */
  localSockets: () => number;
}

/** Bucket sizes for the throughput series: the smallest that keeps a window within 120 buckets. */
const BUCKETS = [60, 300, 900, 3600, 21_600, 86_400];

export function bucketSeconds(windowSeconds: number): number {
  return BUCKETS.find((b) => windowSeconds / b <= 120) ?? BUCKETS[BUCKETS.length - 1];
}

function zeroCounts(): StatusCounts {
  return { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
}

export class StatsReader {
  readonly #o: StatsReaderOptions;

  constructor(opts: StatsReaderOptions) {
    this.#o = opts;
  }

  /** The figures of `owner`'s tasks (null: every user's) over `window` (e.g. `1h`); null for a bad window. */
  async read(owner: string | null, window: string): Promise<Stats | null> {
    const windowSeconds = parseStatsWindow(window);
    if (windowSeconds === null) return null;
    const { pool, nodeDeadAfterMs } = this.#o;
    const bucket = bucketSeconds(windowSeconds);
    // One snapshot for every read: a task that ends meanwhile is counted once, not as running in
    // one read and finished in the next. The reads go one after another: a client runs one query
    // at a time anyway, and queueing a second behind the first is deprecated (pg 9 removes it).
    const { inFlight, finished, queue, nodes } = await withSnapshot(pool, async (c) => ({
      inFlight: await inFlightByType(c, owner),
      finished: await finishedInWindow(c, owner, windowSeconds, bucket),
      queue:
        owner === null
          ? await inFlightCounts(c).then((counts) => ({
              ready: counts.queue.ready ?? 0,
              scheduled: counts.queue.scheduled ?? 0,
              oldest_wait_seconds: counts.oldestReadySeconds,
            }))
          : await ownerQueue(c, owner),
      nodes: await nodeStats(c, nodeDeadAfterMs),
    }));
    const now = Date.now();

    const counts = zeroCounts();
    const byType = new Map<string, TypeStats>();
    const typeOf = (type: string) => {
      let t = byType.get(type);
      if (!t) {
        t = { type, counts: zeroCounts(), p50_ms: null, p95_ms: null };
        byType.set(type, t);
      }
      return t;
    };
    for (const row of [...inFlight, ...finished.counts]) {
      const status = row.status as TaskStatus;
      if (!TASK_STATUSES.includes(status)) continue;
      counts[status] += row.count;
      typeOf(row.type).counts[status] += row.count;
    }
    for (const d of finished.durations) {
      const t = typeOf(d.type);
      t.p50_ms = d.p50_ms === null ? null : Math.round(d.p50_ms);
      t.p95_ms = d.p95_ms === null ? null : Math.round(d.p95_ms);
    }
    const total = (t: TypeStats) => TASK_STATUSES.reduce((n, s) => n + t.counts[s], 0);
    const types = [...byType.values()].sort((a, b) => total(b) - total(a) || a.type.localeCompare(b.type));

    // Every bucket of the window, oldest first, empty ones included (a chart needs the gaps).
    const last = Math.floor(now / 1000 / bucket) * bucket;
    const first = last - Math.ceil(windowSeconds / bucket - 1) * bucket;
    const buckets = new Map<number, ThroughputBucket>();
    for (let at = first; at <= last; at += bucket) {
      buckets.set(at, { at: new Date(at * 1000).toISOString(), completed: 0, failed: 0, cancelled: 0 });
    }
    for (const b of finished.buckets) {
      const slot = buckets.get(b.at);
      if (slot && (b.status === 'completed' || b.status === 'failed' || b.status === 'cancelled'))
        slot[b.status] += b.count;
    }

    let sockets = 0;
    const nodeList = nodes.map((n) => {
      const live = n.id === this.#o.nodeId ? this.#o.localSockets() : n.sockets;
      if (n.alive) sockets += live;
      return {
        id: n.id,
        alive: n.alive,
        started_at: n.started_at.toISOString(),
        heartbeat_at: n.heartbeat_at.toISOString(),
        sockets: live,
        running: n.running,
        concurrency: n.info.concurrency ?? 0,
        types: n.info.types ?? [],
      };
    });

    return {
      scope: owner === null ? 'all' : 'own',
      window,
      window_seconds: windowSeconds,
      at: new Date(now).toISOString(),
      counts,
      types,
      throughput: { bucket_seconds: bucket, buckets: [...buckets.values()] },
      queue: {
        ready: queue.ready,
        scheduled: queue.scheduled,
        oldest_wait_seconds: Math.round(queue.oldest_wait_seconds * 1000) / 1000,
      },
      sockets,
      nodes: nodeList,
    };
  }
}

export interface StatsTickerOptions {
  reader: StatsReader;
  intervalMs: number;
  log: Logger;
  /** The window of the pushed figures. */
  window?: string;
}

/** Every user's figures, computed once per interval for all watchers on this node, only while any watch. */
export class StatsTicker {
  readonly #o: StatsTickerOptions;
  readonly #listeners = new Set<(stats: Stats) => void>();
  #timer: NodeJS.Timeout | undefined;
  #reading = false;

  constructor(opts: StatsTickerOptions) {
    this.#o = opts;
  }

  watch(listener: (stats: Stats) => void): () => void {
    this.#listeners.add(listener);
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#tick(), this.#o.intervalMs);
      this.#timer.unref();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    if (this.#reading) return; // a slow database: skip a beat rather than pile up
    this.#reading = true;
    try {
      const stats = await this.#o.reader.read(null, this.#o.window ?? '1h');
      if (!stats) return;
      for (const listener of this.#listeners) {
        try {
          listener(stats);
        } catch (err) {
          this.#o.log.error({ err }, 'a stats listener threw');
        }
      }
    } catch (err) {
      this.#o.log.debug({ err }, 'stats not read (database unavailable?)');
    } finally {
      this.#reading = false;
    }
  }
}
