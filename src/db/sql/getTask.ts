// Loads one task by id (and, for callers acting for a user, only when that user owns it).
import { type Queryable, TASK_COLUMNS, type TaskRecord, type TaskRow, toTaskRecord } from '../types.ts';

export async function getTask(q: Queryable, id: string): Promise<TaskRecord | null> {
  const { rows } = await q.query<TaskRow>({
    name: 'taskwire_get_task',
    text: `select ${TASK_COLUMNS} from taskwire.tasks where id = $1`,
    values: [id],
  });
  return rows[0] ? toTaskRecord(rows[0]) : null;
}

export async function getTaskByIdempotencyKey(
  q: Queryable,
  owner: string,
  key: string,
): Promise<TaskRecord | null> {
  const { rows } = await q.query<TaskRow>(
    `select ${TASK_COLUMNS} from taskwire.tasks where owner = $1 and idempotency_key = $2`,
    [owner, key],
  );
  return rows[0] ? toTaskRecord(rows[0]) : null;
}
