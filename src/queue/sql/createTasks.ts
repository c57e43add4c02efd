// Creates queued tasks, their `created` audit events and their queue jobs in ONE statement: one
// commit and one NOTIFY for however many tasks arrive together. A statement is atomic, so a
// failure anywhere (the job insert included) leaves none of them.
//
// Each task gets its owner's turn (vtime, see migration 004): after the owner's own queued work,
// and no earlier than the turn being served now (the highest vtime running). Its job is a wake-up
// due at the task's scheduled_at; the claim, not the job, decides which task runs.
//
// The owners' turns are looked up once per owner in the batch (`owners` is materialized): inlined,
// the lookup ran once per new row, and where the plan read the owner's queued tasks through the
// status index (a plan made before the table had statistics) each run cost O(backlog): 40 creates
// behind a backlog of 10,000 took 120 ms instead of 9 (bench/tools/create-cost.ts).
import {
  type NewTask,
  type Queryable,
  TASK_COLUMNS,
  type TaskRecord,
  type TaskRow,
  toTaskRecord,
} from '../../db/index.ts';
import { LIBRARY_MAX_ATTEMPTS, RUN_TASK_JOB } from '../jobs.ts';

/** Exported for the plan test (test/db/create-plan.test.ts). */
export const CREATE_TASKS_SQL = `
with input as (
  select * from jsonb_to_recordset($1::jsonb)
    as u(ord int, id uuid, owner text, type text, input jsonb, max_attempts int, idempotency_key text,
         priority int, scheduled_at timestamptz)
), frontier as (
  select coalesce(max(vtime), 0) as v from taskwire.tasks where status = 'running'
), owners as materialized (
  select o.owner,
         greatest(f.v, coalesce((select q.vtime + 1 from taskwire.tasks q
                                  where q.owner = o.owner and q.status = 'queued'
                                  order by q.inserted_at desc, q.id desc limit 1), 0)) as base
    from (select distinct owner from input) o, frontier f
), numbered as (
  select i.*, o.base + row_number() over (partition by i.owner order by i.ord) - 1 as vtime
    from input i join owners o on o.owner = i.owner
), t as (
  insert into taskwire.tasks (id, owner, type, status, input, max_attempts, idempotency_key, priority,
                              scheduled_at, not_before, vtime)
  select id, owner, type, 'queued', input, max_attempts, idempotency_key, priority, scheduled_at,
         scheduled_at, vtime
    from numbered
  on conflict (owner, idempotency_key) where idempotency_key is not null do nothing
  returning ${TASK_COLUMNS}
), e as (
  insert into taskwire.task_events (task_id, seq, event, attempt, data)
  select id, 0, 'created', 0,
         jsonb_strip_nulls(jsonb_build_object('type', type, 'max_attempts', max_attempts,
           'priority', nullif(priority, 0), 'scheduled_at', scheduled_at)) from t
), j as (
  select graphile_worker.add_jobs(array_agg(row($2::text, json_build_object('task_id', id::text), null,
           scheduled_at, $3::int, id::text, null, null)::graphile_worker.job_spec))
    from t having count(*) > 0
)
select t.*, (select count(*) from j) as jobs from t`;

/** Inserts every task with its job; a task whose idempotency key its owner used before is left out. */
export async function createTasks(q: Queryable, tasks: NewTask[]): Promise<TaskRecord[]> {
  const { rows } = await q.query<TaskRow>({
    name: 'taskwire_create_tasks',
    text: CREATE_TASKS_SQL,
    values: [
      JSON.stringify(
        tasks.map((t, ord) => ({
          ord,
          id: t.id,
          owner: t.owner,
          type: t.type,
          input: t.input,
          max_attempts: t.maxAttempts,
          idempotency_key: t.idempotencyKey,
          priority: t.priority,
          scheduled_at: t.scheduledAt?.toISOString() ?? null,
        })),
      ),
      RUN_TASK_JOB,
      LIBRARY_MAX_ATTEMPTS,
    ],
  });
  return rows.map(toTaskRecord);
}
