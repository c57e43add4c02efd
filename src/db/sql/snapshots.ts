// Write-behind snapshots: the latest progress of many running tasks in ONE statement, with a
// `progress` audit checkpoint for those that crossed a checkpoint. Fenced on attempt, status
// and seq, so a snapshot can never overwrite a terminal state or move progress backwards.
import type { Queryable } from '../types.ts';

export interface Snapshot {
  taskId: string;
  attempt: number;
  seq: number;
  progress: number;
  message: string | null;
  /** Also append a `progress` audit event. */
  checkpoint: boolean;
}

export async function writeSnapshots(q: Queryable, snapshots: Snapshot[]): Promise<number> {
  if (snapshots.length === 0) return 0;
  const { rows } = await q.query<{ written: string }>(
    `with v as (
       select * from unnest($1::uuid[], $2::int[], $3::bigint[], $4::float8[], $5::text[], $6::bool[])
         as v(id, attempt, seq, progress, message, checkpoint)
     ), s as (
       update taskwire.tasks t
          set progress = v.progress, message = v.message, seq = v.seq, updated_at = now()
         from v
        where t.id = v.id and t.attempt = v.attempt and t.status = 'running' and t.seq < v.seq
       returning t.id, t.seq, t.attempt, t.progress, t.message, v.checkpoint
     ), a as (
       insert into taskwire.task_events (task_id, seq, event, attempt, data)
       select id, seq, 'progress', attempt, jsonb_build_object('progress', progress, 'message', message)
         from s where checkpoint
     )
     select count(*) as written from s`,
    [
      snapshots.map((s) => s.taskId),
      snapshots.map((s) => s.attempt),
      snapshots.map((s) => s.seq),
      snapshots.map((s) => s.progress),
      snapshots.map((s) => s.message),
      snapshots.map((s) => s.checkpoint),
    ],
  );
  return Number(rows[0]?.written ?? 0);
}
