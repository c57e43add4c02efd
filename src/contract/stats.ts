// `GET /api/stats` and the `stats` event of `admin:tasks` (api.md): how the system is doing. The
// one owner of this shape; no imports but the task statuses, so the dashboard and the SDK may
// import it as it is.
import type { TaskStatus } from './task.ts';

/** Tasks by status: `queued` and `running` now, the finished ones finished within the window. */
export type StatusCounts = Record<TaskStatus, number>;

/** One task type in the window. */
export interface TypeStats {
  type: string;
  counts: StatusCounts;
  /** Run time of the finishing attempt (started to finished) of tasks finished in the window. */
  p50_ms: number | null;
  p95_ms: number | null;
}

/** Tasks finished in one bucket of the window, by outcome. */
export interface ThroughputBucket {
  /** The bucket's start (ISO 8601). */
  at: string;
  completed: number;
  failed: number;
  cancelled: number;
}

/** A server process from the liveness table. */
export interface NodeStats {
  id: string;
  /** Its heartbeat is fresher than the dead-after threshold. */
  alive: boolean;
  started_at: string;
  heartbeat_at: string;
  /** Open client sockets, as of its last heartbeat. */
  sockets: number;
  /** Attempts it runs now. */
  running: number;
  /** Attempts it may run at once (0: an API-and-sockets-only node). */
  concurrency: number;
  /** Task types it runs. */
  types: string[];
}

export interface Stats {
  /** `own`: the caller's tasks; `all`: every user's (admin, `?all=true`). */
  scope: 'own' | 'all';
  /** As asked (`?window=`, default `1h`), and in seconds. */
  window: string;
  window_seconds: number;
  /** Server time of the figures (ISO 8601). */
  at: string;
  counts: StatusCounts;
  /** Counts and run-time percentiles per type, most tasks first. */
  types: TypeStats[];
  /** Tasks finished per bucket over the window, oldest first (every bucket present). */
  throughput: { bucket_seconds: number; buckets: ThroughputBucket[] };
  queue: {
    /** Queued tasks that may start now. */
    ready: number;
    /** Queued tasks waiting for their time (a delay or a retry's backoff). */
    scheduled: number;
    /** How long the oldest ready task has waited, in seconds (0 when none waits). */
    oldest_wait_seconds: number;
  };
  /** Open client sockets over all live nodes. */
  sockets: number;
  nodes: NodeStats[];
}

const UNIT_SECONDS: Record<string, number> = { m: 60, h: 3600, d: 86_400 };
/** The longest `?window=`. */
export const MAX_STATS_WINDOW_SECONDS = 31 * 86_400;

/** `?window=` (`30m`, `1h`, `7d`: an integer and a unit, one minute to 31 days) in seconds, else null. */
export function parseStatsWindow(spec: string): number | null {
  const m = /^([1-9]\d{0,5})(m|h|d)$/.exec(spec);
  if (!m) return null;
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2]];
  return seconds <= MAX_STATS_WINDOW_SECONDS ? seconds : null;
}
