// Wake-ups: queue jobs that carry no task (the claim picks what runs). Added when an attempt frees
// a capped owner's or type's slot while a task of it waits and jobs are short, and by the sweep when some task could start now (due, its owner and type under their caps) but no job is
// waiting to start it. Otherwise nothing is added.
import type { Caps, Queryable } from '../../db/index.ts';
import { LIBRARY_MAX_ATTEMPTS, RUN_TASK_JOB } from '../jobs.ts';

const ADD = `select graphile_worker.add_jobs(array_agg(row($1::text, '{}'::json, null, null, $2::int, null, null, null)
         ::graphile_worker.job_spec))
  from generate_series(1, $3::int)`;

/**
 * After attempts ended: one wake-up per ended attempt whose owner (or type) has a cap, now has a
 * free slot and a task waiting that is due, unless jobs enough are already waiting (as many as the
 * due tasks, counted no further than needed): a waiting task's own job may have been spent while
 * the cap was full, and the slot must not stay idle until the sweep.
 */
const AFTER_END = `with avail as (
  select count(*)::int as n from graphile_worker._private_jobs j where j.is_available and j.run_at <= now()
), short as (
  select count(*) > (select n from avail) as yes
    from (select 1 from taskwire.tasks q
           where q.status = 'queued' and (q.not_before is null or q.not_before <= now())
           limit (select n from avail) + 1) d
), e as (
  select owner, type, count(*)::int as n from jsonb_to_recordset($3::jsonb) as e(owner text, type text)
   group by owner, type
), w as (
  select e.n from e
   where (select yes from short)
     and (($4::int is not null
           and (select count(*) from taskwire.tasks r where r.owner = e.owner and r.status = 'running') < $4::int
           and exists (select 1 from taskwire.tasks q where q.owner = e.owner and q.status = 'queued'
                          and (q.not_before is null or q.not_before <= now())))
       or (($5::jsonb ->> e.type) is not null
           and (select count(*) from taskwire.tasks r where r.type = e.type and r.status = 'running')
                 < ($5::jsonb ->> e.type)::int
           and exists (select 1 from taskwire.tasks q where q.type = e.type and q.status = 'queued'
                          and (q.not_before is null or q.not_before <= now()))))
)
select graphile_worker.add_jobs(array_agg(row($1::text, '{}'::json, null, null, $2::int, null, null, null)
         ::graphile_worker.job_spec))
  from w, generate_series(1, w.n)
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

/** An attempt that ended, freeing a slot of its owner and its type. */
export interface FreedSlot {
  owner: string;
  type: string;
}

/** After attempts ended: wake-ups for the tasks their owners' or types' caps held back. */
export async function addWakeups(q: Queryable, freed: FreedSlot[], caps: Caps): Promise<void> {
  await q.query({
    name: 'taskwire_add_wakeups',
    text: AFTER_END,
    values: [
      RUN_TASK_JOB,
      LIBRARY_MAX_ATTEMPTS,
      JSON.stringify(freed),
      caps.user,
      JSON.stringify(caps.types),
    ],
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
