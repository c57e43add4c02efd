// Wake-ups: queue jobs that carry no task (the claim picks what runs). Added when an attempt frees
// a slot that a cap may have held tasks back for, and by the sweep when tasks could start but no
// job is waiting to start them. Only while some queued task is due: otherwise nothing is added.
import type { Queryable } from '../../db/index.ts';
import { LIBRARY_MAX_ATTEMPTS, RUN_TASK_JOB } from '../jobs.ts';

const SQL = `
select graphile_worker.add_jobs(array_agg(row($1::text, '{}'::json, null, null, $2::int, null, null, null)
         ::graphile_worker.job_spec))
  from generate_series(1, $3::int)
 where exists (select 1 from taskwire.tasks
                where status = 'queued' and (scheduled_at is null or scheduled_at <= now()))
   and (not $4::boolean or not exists (select 1 from graphile_worker._private_jobs j
                                        where j.is_available and j.run_at <= now()))
having count(*) > 0`;

/** Adds `count` wake-ups if a queued task is due (and, with `onlyIfNoneWaits`, no job is ready). */
export async function addWakeups(q: Queryable, count: number, onlyIfNoneWaits = false): Promise<void> {
  await q.query({
    name: 'taskwire_add_wakeups',
    text: SQL,
    values: [RUN_TASK_JOB, LIBRARY_MAX_ATTEMPTS, count, onlyIfNoneWaits],
  });
}
