// GET /api/stats's statements: tasks in flight by type and status, tasks finished in a window
// (by type and status, per time bucket, run-time percentiles per type), the queue of one owner,
// and the nodes of the liveness table. Index-backed (migration 020): the in-flight rows through
// tasks_active_type_idx (or the owner's), the finished ones through tasks_finished_idx or
// tasks_owner_finished_idx, index-only.
import type { Queryable } from '../types.ts';

export interface StatusTypeCount {
  type: string;
  status: string;
  count: number;
}

export interface FinishedInWindow {
  /** Finished tasks by type and status (a status counted once per type). */
  counts: StatusTypeCount[];
  /** Run time of the finishing attempt, per type. */
  durations: { type: string; p50_ms: number | null; p95_ms: number | null }[];
  /** Finished tasks per bucket (epoch seconds of its start) and status; empty buckets left out. */
  buckets: { at: number; status: string; count: number }[];
}

/** Queued and running tasks by type: everyone's (owner null) or one owner's. */
export async function inFlightByType(q: Queryable, owner: string | null): Promise<StatusTypeCount[]> {
  const { rows } = await q.query<StatusTypeCount>(
    `select type, status, count(*)::int as count from taskwire.tasks
      where status in ('queued', 'running') ${owner === null ? '' : 'and owner = $1'}
      group by type, status`,
    owner === null ? [] : [owner],
  );
  return rows;
}

/** What finished since `windowSeconds` ago: counts, run times and buckets of `bucketSeconds`. */
export async function finishedInWindow(
  q: Queryable,
  owner: string | null,
  windowSeconds: number,
  bucketSeconds: number,
): Promise<FinishedInWindow> {
  const params: unknown[] = [windowSeconds, bucketSeconds];
  if (owner !== null) params.push(owner);
  const { rows } = await q.query<{
    kind: string;
    type: string | null;
    status: string | null;
    a: number;
    b: number | null;
  }>(
    `with w as materialized (
       select type, status, started_at, finished_at from taskwire.tasks
        where finished_at is not null and finished_at >= now() - make_interval(secs => $1::float8)
          and status in ('completed', 'failed', 'cancelled') ${owner === null ? '' : 'and owner = $3'}
     )
     select 'count' as kind, type, status, count(*)::float8 as a, null::float8 as b from w group by type, status
     union all
     select 'duration', type, null, percentile_cont(0.5) within group (order by ms), percentile_cont(0.95) within group (order by ms)
       from (select type, extract(epoch from finished_at - started_at) * 1000 as ms from w where started_at is not null) d
      group by type
     union all
     select 'bucket', null, status, floor(extract(epoch from finished_at) / $2::float8) * $2::float8, count(*)::float8
       from w group by 3, 4`,
    params,
  );
  const out: FinishedInWindow = { counts: [], durations: [], buckets: [] };
  for (const r of rows) {
    if (r.kind === 'count') out.counts.push({ type: r.type!, status: r.status!, count: r.a });
    else if (r.kind === 'duration') out.durations.push({ type: r.type!, p50_ms: r.a, p95_ms: r.b });
    else out.buckets.push({ at: r.a, status: r.status!, count: r.b ?? 0 });
  }
  return out;
}

/** One owner's queued tasks: may start now, wait for their time, and the oldest ready one's wait. */
export async function ownerQueue(
  q: Queryable,
  owner: string,
): Promise<{ ready: number; scheduled: number; oldest_wait_seconds: number }> {
  const { rows } = await q.query<{ ready: number; scheduled: number; oldest_wait_seconds: number }>(
    `select count(*) filter (where scheduled_at is null or scheduled_at <= now())::int as ready,
            count(*) filter (where scheduled_at > now())::int as scheduled,
            coalesce(extract(epoch from now() - min(coalesce(scheduled_at, inserted_at))
              filter (where scheduled_at is null or scheduled_at <= now())), 0)::float8 as oldest_wait_seconds
       from taskwire.tasks where owner = $1 and status = 'queued'`,
    [owner],
  );
  return rows[0];
}

export interface NodeRow {
  id: string;
  alive: boolean;
  started_at: Date;
  heartbeat_at: Date;
  sockets: number;
  info: { concurrency?: number; types?: string[] };
  running: number;
}

/** The liveness table: each node, whether it is alive, its sockets, and the attempts it runs. */
export async function nodeStats(q: Queryable, deadAfterMs: number): Promise<NodeRow[]> {
  const { rows } = await q.query<NodeRow>(
    `select n.id, n.heartbeat_at > now() - make_interval(secs => $1::float8 / 1000) as alive,
            n.started_at, n.heartbeat_at, n.sockets, n.info,
            (select count(*) from taskwire.tasks t where t.status = 'running' and t.node_id = n.id)::int as running
       from taskwire.nodes n where n.stopped_at is null order by n.id`,
    [deadAfterMs],
  );
  return rows;
}
