// The caller's tasks newest first, keyset-paginated on (inserted_at, id): index-backed by
// tasks_owner_*_inserted_idx (or, for an admin's read of every user's, tasks_inserted_idx of
// migration 020), so a deep page costs the same as the first. The cursor names the
// previous page's last task; its exact (microsecond) position is read from the row itself, so
// tasks created within one millisecond are never skipped.
import {
  type Queryable,
  TASK_COLUMNS,
  type TaskRecord,
  type TaskRow,
  type TaskStatus,
  toTaskRecord,
} from '../types.ts';

export interface ListFilter {
  /** Absent: every user's tasks (an admin's read). */
  owner?: string;
  status?: TaskStatus;
  type?: string;
  limit: number;
  /** The id of the last task of the previous page (one of the owner's). */
  afterId?: string;
}

export async function listTasks(
  q: Queryable,
  f: ListFilter,
): Promise<{ tasks: TaskRecord[]; more: boolean }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.owner !== undefined) {
    params.push(f.owner);
    where.push('owner = $1');
  }
  if (f.status) {
    params.push(f.status);
    where.push(`status = $${params.length}`);
  }
  if (f.type) {
    params.push(f.type);
    where.push(`type = $${params.length}`);
  }
  if (f.afterId) {
    params.push(f.afterId);
    where.push(
      `(inserted_at, id) < (select inserted_at, id from taskwire.tasks where id = $${params.length}::uuid${f.owner !== undefined ? ' and owner = $1' : ''})`,
    );
  }
  params.push(f.limit + 1);
  const { rows } = await q.query<TaskRow>(
    `select ${TASK_COLUMNS} from taskwire.tasks ${where.length ? `where ${where.join(' and ')}` : ''}
     order by inserted_at desc, id desc limit $${params.length}`,
    params,
  );
  const more = rows.length > f.limit;
  return { tasks: rows.slice(0, f.limit).map(toTaskRecord), more };
}
