// An attempt's life in the tasks table: claim it, then end it (completed, failed, cancelled) or
// send it back to the queue for a retry. Every end is fenced on the attempt number, so a
// process that lost its attempt (presumed dead, then back) cannot write over a newer one.
import {
  type Queryable,
  TASK_COLUMNS,
  type TaskRecord,
  type TaskRow,
  type TaskStatus,
  toTaskRecord,
} from '../types.ts';

/** What a claim got: an attempt to run, or a rescued task that has no attempt left. */
export type ClaimResult =
  | {
      kind: 'started';
      task: TaskRecord;
      cancelRequested: boolean;
      /** The task has output from an earlier attempt: this one starts its output over (output_reset). */
      outputReset: boolean;
    }
  | { kind: 'lost'; task: TaskRecord };

/**
 * A rescued task (its process died mid-attempt) may have sent events and output past what was
 * saved, so its clients saw seqs and chunk indexes the database never stored; the next attempt's
 * seq and output start jump past any of them.
 */
export const RESCUE_SEQ_GAP = 1_000_000;

export interface Claim {
  /** The queue job the worker holds (a wake-up). */
  jobId: string;
}

/** The fair-scheduling caps (api.md "Fair scheduling"); none means no cap. */
export interface Caps {
  /** Running tasks per owner across all nodes (null: no cap). */
  user: number | null;
  /** Running tasks per type, for the types that have a cap. */
  types: Record<string, number>;
}

/**
 * Starts one attempt per job, in ONE statement: status running, attempt + 1, and a `started`
 * audit event. A job whose running attempt was lost (its node died, and the job was handed back)
 * runs that same task again; every other job runs the fairest runnable task that
 * taskwire.pick_tasks() chooses (priority, then owners' turns, within the caps). A task with
 * output from an earlier attempt starts its output over at the next index (past a gap after a
 * rescue). One result per claim, in order: null when there is nothing to run for it.
 */
export async function claimAttempts(
  q: Queryable,
  nodeId: string,
  claims: Claim[],
  caps: Caps,
): Promise<(ClaimResult | null)[]> {
  const { rows } = await q.query<
    TaskRow & { job: string; cancel_requested: boolean; output_reset: boolean; lost: boolean }
  >({
    name: 'taskwire_claim_attempts',
    text: `with v as (
       select * from jsonb_to_recordset($1::jsonb) as v(ord int, job bigint)
     ), rescued as (
       select t.id, v.job from taskwire.tasks t join v on t.job_id = v.job
        where t.status = 'running'
        for update of t
     ), fresh as (
       select v.job, row_number() over (order by v.ord) as n from v
        where v.job not in (select job from rescued)
     ), picked as (
       select p.task_id as id, row_number() over () as n
         from taskwire.pick_tasks((select count(*) from fresh)::int, $3::int, $4::jsonb) p
     ), chosen as (
       select id, job from rescued
       union all
       select p.id, f.job from picked p join fresh f on f.n = p.n
     ), t as (
       update taskwire.tasks t
          set status = 'running', attempt = t.attempt + 1, progress = 0,
              seq = t.seq + case when t.status = 'running' then ${RESCUE_SEQ_GAP} else 1 end,
              output_start = case when o.output_next > o.output_start
                then o.output_next + case when o.status = 'running' then ${RESCUE_SEQ_GAP} else 0 end
                else o.output_start end,
              output_next = case when o.output_next > o.output_start
                then o.output_next + case when o.status = 'running' then ${RESCUE_SEQ_GAP} else 0 end
                else o.output_next end,
              message = null, node_id = $2, job_id = c.job, started_at = now(), updated_at = now()
         from chosen c, taskwire.tasks o
        where t.id = c.id and o.id = c.id and t.status in ('queued', 'running') and t.attempt < t.max_attempts
       returning ${prefixed('t')}, c.job, t.cancel_requested_at is not null as cancel_requested,
                 o.output_next > o.output_start as output_reset, false as lost
     ), e as (
       insert into taskwire.task_events (task_id, seq, event, attempt, data)
       select id, seq, 'started', attempt, jsonb_build_object('node', node_id) from t
     )
     select * from t
     union all
     select ${prefixed('x')}, r.job, false, false, true from taskwire.tasks x join rescued r on r.id = x.id
      where x.attempt >= x.max_attempts`,
    values: [
      JSON.stringify(claims.map((c, ord) => ({ ord, job: c.jobId }))),
      nodeId,
      caps.user,
      JSON.stringify(caps.types),
    ],
  });
  const byJob = new Map(rows.map((r) => [String(r.job), r]));
  return claims.map((c) => {
    const row = byJob.get(c.jobId);
    if (!row) return null;
    return row.lost
      ? { kind: 'lost', task: toTaskRecord(row) }
      : {
          kind: 'started',
          task: toTaskRecord(row),
          cancelRequested: row.cancel_requested,
          outputReset: row.output_reset,
        };
  });
}

export interface AttemptEnd {
  taskId: string;
  attempt: number;
  seq: number;
  status: Extract<TaskStatus, 'completed' | 'failed' | 'cancelled'>;
  progress: number;
  message: string | null;
  result: unknown;
  error: { message: string } | null;
}

/**
 * Writes terminal states in ONE statement, each fenced: only the current attempt of a
 * non-terminal task may end it. One result per end, in order: null where it was refused.
 */
export async function finishAttempts(q: Queryable, ends: AttemptEnd[]): Promise<(TaskRecord | null)[]> {
  const { rows } = await q.query<TaskRow>({
    name: 'taskwire_finish_attempts',
    text: `with v as (
       select * from jsonb_to_recordset($1::jsonb)
         as v(id uuid, attempt int, status text, seq bigint, progress float8, message text, result jsonb, error jsonb)
     ), t as (
       update taskwire.tasks t
          set status = v.status, seq = greatest(t.seq + 1, v.seq), progress = v.progress, message = v.message,
              result = v.result, error = v.error, finished_at = now(), updated_at = now()
         from v
        where t.id = v.id and t.attempt = v.attempt and t.status in ('running', 'queued')
       returning ${prefixed('t')}
     ), e as (
       insert into taskwire.task_events (task_id, seq, event, attempt, data)
       select id, seq, status, attempt, jsonb_strip_nulls(jsonb_build_object('result', result, 'error', error)) from t
     )
     select * from t`,
    values: [
      JSON.stringify(
        ends.map((e) => ({
          id: e.taskId,
          attempt: e.attempt,
          status: e.status,
          seq: e.seq,
          progress: e.progress,
          message: e.message,
          result: e.result ?? null,
          error: e.error,
        })),
      ),
    ],
  });
  const byId = new Map(rows.map((r) => [r.id, toTaskRecord(r)]));
  return ends.map((e) => byId.get(e.taskId) ?? null);
}

/** TASK_COLUMNS qualified by a table alias (an UPDATE ... FROM sees two tables). */
function prefixed(alias: string): string {
  return TASK_COLUMNS.split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');
}

export interface AttemptRetry {
  taskId: string;
  attempt: number;
  seq: number;
  progress: number;
  message: string | null;
  error: { message: string };
  retryAt: Date;
}

/** Sends a failed attempt back to the queue (status queued) with a `retrying` audit event. */
export async function retryAttempt(q: Queryable, r: AttemptRetry): Promise<TaskRecord | null> {
  const { rows } = await q.query<TaskRow>({
    name: 'taskwire_retry_attempt',
    text: `with t as (
       update taskwire.tasks
          set status = 'queued', seq = greatest(seq + 1, $3), progress = $4, message = $5, error = $6,
              not_before = $7::timestamptz, updated_at = now()
        where id = $1 and attempt = $2 and status = 'running'
       returning ${TASK_COLUMNS}
     ), e as (
       insert into taskwire.task_events (task_id, seq, event, attempt, data)
       select id, seq, 'retrying', attempt, jsonb_build_object('error', error, 'retry_at', $7::timestamptz) from t
     )
     select * from t`,
    values: [r.taskId, r.attempt, r.seq, r.progress, r.message, r.error, r.retryAt.toISOString()],
  });
  return rows[0] ? toTaskRecord(rows[0]) : null;
}

/**
 * Hands an attempt interrupted by a shutdown back to the queue: status queued, and the attempt
 * does not count (attempt - 1), so the next claim runs it again under the same number. Audited
 * and announced as `retrying` with retry_at now. Fenced like every other end.
 */
export async function releaseAttempt(
  q: Queryable,
  r: Omit<AttemptRetry, 'retryAt' | 'error'> & { error: { message: string } },
): Promise<TaskRecord | null> {
  const { rows } = await q.query<TaskRow>(
    `with t as (
       update taskwire.tasks
          set status = 'queued', attempt = attempt - 1, seq = greatest(seq + 1, $3), progress = $4, message = $5,
              not_before = null, updated_at = now()
        where id = $1 and attempt = $2 and status = 'running'
       returning ${TASK_COLUMNS}
     ), e as (
       insert into taskwire.task_events (task_id, seq, event, attempt, data)
       select id, seq, 'retrying', attempt + 1,
              jsonb_build_object('error', $6::jsonb, 'retry_at', now(), 'released', true) from t
     )
     select * from t`,
    [r.taskId, r.attempt, r.seq, r.progress, r.message, r.error],
  );
  return rows[0] ? toTaskRecord(rows[0]) : null;
}

/** Cancels a task that is still waiting in the queue. Null if it is no longer queued. */
export async function cancelQueued(q: Queryable, taskId: string, minSeq: number): Promise<TaskRecord | null> {
  const { rows } = await q.query<TaskRow>(
    `with t as (
       update taskwire.tasks
          set status = 'cancelled', seq = greatest(seq, $2) + 1, finished_at = now(), updated_at = now(),
              cancel_requested_at = now()
        where id = $1 and status = 'queued'
       returning ${TASK_COLUMNS}
     ), e as (
       insert into taskwire.task_events (task_id, seq, event, attempt, data)
       select id, seq, 'cancelled', attempt, '{}' from t
     )
     select * from t`,
    [taskId, minSeq],
  );
  return rows[0] ? toTaskRecord(rows[0]) : null;
}

/**
 * Marks a running task for cancellation: the node running it is told over the bus, and this
 * durable mark is the fallback (a node that claims the task later sees it and cancels at once).
 */
export async function requestCancel(q: Queryable, taskId: string): Promise<boolean> {
  const { rowCount } = await q.query(
    `update taskwire.tasks set cancel_requested_at = coalesce(cancel_requested_at, now())
      where id = $1 and status = 'running'`,
    [taskId],
  );
  return (rowCount ?? 0) > 0;
}
