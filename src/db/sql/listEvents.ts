// A task's audit trail, oldest first.
import type { Queryable, TaskEventRecord } from '../types.ts';

interface EventRow {
  id: string;
  seq: string;
  event: string;
  attempt: number;
  data: Record<string, unknown>;
  inserted_at: Date;
}

export async function listEvents(q: Queryable, taskId: string): Promise<TaskEventRecord[]> {
  const { rows } = await q.query<EventRow>(
    'select id, seq, event, attempt, data, inserted_at from taskwire.task_events where task_id = $1 order by id',
    [taskId],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    seq: Number(r.seq),
    event: r.event,
    attempt: r.attempt,
    data: r.data,
    inserted_at: r.inserted_at.toISOString(),
  }));
}
