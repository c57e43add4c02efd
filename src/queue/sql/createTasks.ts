// Creates queued tasks, their `created` audit events and their jobs in ONE statement: one
// commit and one NOTIFY for however many tasks arrive together. A statement is atomic, so a
// failure anywhere (the job insert included) leaves none of them.
import {
  type NewTask,
  type Queryable,
  TASK_COLUMNS,
  type TaskRecord,
  type TaskRow,
  toTaskRecord,
} from '../../db/index.ts';
import { LIBRARY_MAX_ATTEMPTS, RUN_TASK_JOB } from '../jobs.ts';

const SQL = `
with input as (
  select * from jsonb_to_recordset($1::jsonb)
    as u(id uuid, owner text, type text, input jsonb, max_attempts int, idempotency_key text)
), t as (
  insert into taskwire.tasks (id, owner, type, status, input, max_attempts, idempotency_key)
  select id, owner, type, 'queued', input, max_attempts, idempotency_key from input
  on conflict (owner, idempotency_key) where idempotency_key is not null do nothing
  returning ${TASK_COLUMNS}
), e as (
  insert into taskwire.task_events (task_id, seq, event, attempt, data)
  select id, 0, 'created', 0, jsonb_build_object('type', type, 'max_attempts', max_attempts) from t
), j as (
  select graphile_worker.add_jobs(array_agg(row($2::text, json_build_object('task_id', id::text), null, null,
           $3::int, id::text, null, null)::graphile_worker.job_spec))
    from t having count(*) > 0
)
select t.*, (select count(*) from j) as jobs from t`;

/** Inserts every task with its job; a task whose idempotency key its owner used before is left out. */
export async function createTasks(q: Queryable, tasks: NewTask[]): Promise<TaskRecord[]> {
  const { rows } = await q.query<TaskRow>({
    name: 'taskwire_create_tasks',
    text: SQL,
    values: [
      JSON.stringify(
        tasks.map((t) => ({
          id: t.id,
          owner: t.owner,
          type: t.type,
          input: t.input,
          max_attempts: t.maxAttempts,
          idempotency_key: t.idempotencyKey,
        })),
      ),
      RUN_TASK_JOB,
      LIBRARY_MAX_ATTEMPTS,
    ],
  });
  return rows.map(toTaskRecord);
}
