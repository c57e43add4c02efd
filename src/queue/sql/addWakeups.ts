// Wake-ups: queue jobs that carry no task (the claim picks what runs). Added when an attempt frees
// a slot that a cap may have held tasks back for (only while a queued task is due), and by the
// sweep when some task could start now (due, its owner and type under their caps) but no job is
// waiting to start it. Otherwise nothing is added.
import type { Caps, Queryable } from '../../db/index.ts';
import { LIBRARY_MAX_ATTEMPTS, RUN_TASK_JOB } from '../jobs.ts';

const ADD = `select graphile_worker.add_jobs(array_agg(row($1::text, '{}'::json, null, null, $2::int, null, null, null)
         ::graphile_worker.job_spec))
  from generate_series(1, $3::int)`;

const AFTER_END = `${ADD}
 where exists (select 1 from taskwire.tasks
                where status = 'queued' and (not_before is null or not_before <= now()))
having count(*) > 0`;

const SWEEP = `with capped_owners as (
  select owner from taskwire.tasks where $4::int is not null and status = 'running'
   group by owner having count(*) >= $4::int
), capped_types as (
  select type from taskwire.tasks where status = 'running' and $5::jsonb ? type
   group by type having count(*) >= ($5::jsonb ->> type)::int
)
${ADD}
 where not exists (select 1 from graphile_worker._private_jobs j where j.is_available and j.run_at <= now())
   and exists (select 1 from taskwire.tasks q
                where q.status = 'queued' and (q.not_before is null or q.not_before <= now())
                  and q.owner not in (select owner from capped_owners)
                  and q.type not in (select type from capped_types))
having count(*) > 0`;

/** After an attempt freed a slot: adds `count` wake-ups if a queued task is due. */
export async function addWakeups(q: Queryable, count: number): Promise<void> {
  await q.query({
    name: 'taskwire_add_wakeups',
    text: AFTER_END,
    values: [RUN_TASK_JOB, LIBRARY_MAX_ATTEMPTS, count],
  });
}

/** The sweep: adds `count` wake-ups if a task could start now and no job is ready to start it. */
export async function sweepWakeups(q: Queryable, count: number, caps: Caps): Promise<void> {
  await q.query({
    name: 'taskwire_sweep_wakeups',
    text: SWEEP,
    values: [RUN_TASK_JOB, LIBRARY_MAX_ATTEMPTS, count, caps.user, JSON.stringify(caps.types)],
  });
}
