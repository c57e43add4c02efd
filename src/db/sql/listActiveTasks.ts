// The tasks in flight (queued or running), newest first: what a `user:<sub>` or `admin:tasks` join
// replies with. One owner's (index tasks_owner_status_inserted_idx) or everyone's (tasks_active_idx).
import { type Queryable, TASK_COLUMNS, type TaskRecord, type TaskRow, toTaskRecord } from '../types.ts';

export async function listActiveTasks(
  q: Queryable,
  owner: string | null,
  limit: number,
): Promise<TaskRecord[]> {
  const { rows } = await q.query<TaskRow>(
    owner === null
      ? `select ${TASK_COLUMNS} from taskwire.tasks where status in ('queued', 'running')
         order by inserted_at desc, id desc limit $1`
      : `select ${TASK_COLUMNS} from taskwire.tasks where owner = $2 and status in ('queued', 'running')
         order by inserted_at desc, id desc limit $1`,
    owner === null ? [limit] : [limit, owner],
  );
  return rows.map(toTaskRecord);
}
