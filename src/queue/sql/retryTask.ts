// POST /retry: a failed or cancelled task starts a new series of attempts, in ONE statement: the
// row goes back to `queued` (attempt keeps its number, so the next one is attempt + 1; the budget
// is fresh: max_attempts = attempt + the budget the task was created with), its `retried` audit
// event, and its queue job. It takes its owner's turn like a new task. Any other status: no row.
import { type Queryable, TASK_COLUMNS, type TaskRecord, type TaskRow, toTaskRecord } from '../../db/index.ts';
import { LIBRARY_MAX_ATTEMPTS, RUN_TASK_JOB } from '../jobs.ts';

const SQL = `
with old as (
  select id, status, attempt, max_attempts,
         coalesce((select (e.data ->> 'max_attempts')::int from taskwire.task_events e
                    where e.task_id = t.id and e.event = 'created' order by e.id limit 1), max_attempts) as budget
    from taskwire.tasks t
   where id = $1 and status in ('failed', 'cancelled') and ($2::text is null or owner = $2)
   for update
), frontier as (
  select coalesce(max(vtime), 0) as v from taskwire.tasks where status = 'running'
), t as (
  update taskwire.tasks t
     set status = 'queued', max_attempts = old.attempt + old.budget, seq = t.seq + 1, progress = 0,
         message = null, result = null, error = null, cancel_requested_at = null, finished_at = null,
         scheduled_at = null, not_before = null, vtime = (select v from frontier), updated_at = now()
    from old
   where t.id = old.id
  returning ${TASK_COLUMNS.split(', ')
    .map((c) => `t.${c}`)
    .join(', ')}, old.status as previous_status
), e as (
  insert into taskwire.task_events (task_id, seq, event, attempt, data)
  select id, seq, 'retried', attempt,
         jsonb_build_object('by', $3::text, 'previous_status', previous_status, 'max_attempts', max_attempts)
    from t
), j as (
  select graphile_worker.add_job($4::text, json_build_object('task_id', id::text), job_key := id::text,
                                 max_attempts := $5::int)
    from t
)
select t.*, (select count(*) from j) as jobs from t`;

export interface RetryRequest {
  taskId: string;
  /** Only this owner's task (null: any task, for an admin). */
  owner: string | null;
  /** Who asked, for the audit trail. */
  by: string;
}

/** The task as queued again, or null when it is not (found, the owner's, failed or cancelled). */
export async function retryTask(q: Queryable, r: RetryRequest): Promise<TaskRecord | null> {
  const { rows } = await q.query<TaskRow>({
    name: 'taskwire_retry_task',
    text: SQL,
    values: [r.taskId, r.owner, r.by, RUN_TASK_JOB, LIBRARY_MAX_ATTEMPTS],
  });
  return rows[0] ? toTaskRecord(rows[0]) : null;
}
