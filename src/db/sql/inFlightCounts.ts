// What is in flight, for /metrics at scrape time: tasks by in-flight status (through the partial
// index tasks_active_idx) and the queue's depth and wait, in one statement.
import type { Queryable } from '../types.ts';

export interface InFlightCounts {
  tasks: Record<string, number>;
  queue: Record<string, number>;
  oldestReadySeconds: number;
}

export async function inFlightCounts(q: Queryable): Promise<InFlightCounts> {
  const { rows } = await q.query<{
    queued: number;
    running: number;
    ready: number;
    scheduled: number;
    locked: number;
    oldest_ready_seconds: number;
  }>(
    `select
       (select count(*) from taskwire.tasks where status = 'queued')::int as queued,
       (select count(*) from taskwire.tasks where status = 'running')::int as running,
       count(*) filter (where j.locked_at is null and j.run_at <= now())::int as ready,
       count(*) filter (where j.locked_at is null and j.run_at > now())::int as scheduled,
       count(*) filter (where j.locked_at is not null)::int as locked,
       coalesce(extract(epoch from now() - min(j.run_at) filter (where j.locked_at is null and j.run_at <= now())), 0)::float8
         as oldest_ready_seconds
     from graphile_worker._private_jobs j`,
  );
  const r = rows[0];
  return {
    tasks: { queued: r.queued, running: r.running },
    queue: { ready: r.ready, scheduled: r.scheduled, locked: r.locked },
    oldestReadySeconds: r.oldest_ready_seconds,
  };
}
