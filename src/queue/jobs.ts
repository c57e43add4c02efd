// The job side of a task, in graphile-worker's SQL API: one job per task waiting to start, keyed
// by the task id and due when the task is, added inside the caller's transaction (so the task row
// and its job commit together). A job is a wake-up: the worker that takes it runs the fairest
// runnable task (the claim decides, in PostgreSQL), which need not be the task that added it.
import type { Queryable } from '../db/index.ts';

/** graphile-worker task identifier of taskwire's one job kind. */
export const RUN_TASK_JOB = 'taskwire.run';
/**
 * taskwire decides retries itself (so `retrying` can say `retry_at`); the library's own attempt
 * count only guards against a job whose end could not be recorded (for example, the database
 * went away in the middle), which it then re-offers with its backoff.
 */
export const LIBRARY_MAX_ATTEMPTS = 25;

export interface RunTaskPayload {
  /** The task whose arrival added the job (a hint for logs; the claim decides what runs). */
  task_id: string;
}

export async function enqueueTaskJob(
  q: Queryable,
  taskId: string,
  runAt?: Date,
  schema = 'graphile_worker',
): Promise<void> {
  await q.query(
    `select ${schema}.add_job($1, json_build_object('task_id', $2::text), run_at := $3::timestamptz,
                               job_key := $2::text, max_attempts := $4)`,
    [RUN_TASK_JOB, taskId, runAt?.toISOString() ?? null, LIBRARY_MAX_ATTEMPTS],
  );
}

/** Removes the task's waiting job (a no-op when it is running: a locked job is left alone). */
export async function removeTaskJob(q: Queryable, taskId: string, schema = 'graphile_worker'): Promise<void> {
  await q.query(`select ${schema}.remove_job($1)`, [taskId]);
}
