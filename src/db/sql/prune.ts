// Retention: deletes one batch of finished tasks older than a cutoff, oldest first (through
// tasks_finished_idx), with the rows that belong to them, in one statement, under a transaction
// advisory lock so that one node prunes at a time. Returns the rows deleted per table, or null
// when another node holds the lock.
import type pg from 'pg';

/** A table whose rows belong to a task: deleted with it, and counted under its own name. */
export interface TaskChildTable {
  /** Schema-qualified name, e.g. `taskwire.task_events`. */
  table: string;
  /** The column holding the task id. */
  column: string;
}

/**
 * The tables pruned with their tasks, each counted on its own (their foreign keys' `on delete
 * cascade` would delete the rows too, but uncounted). A new per-task table is one more entry.
 */
export const TASK_CHILD_TABLES: readonly TaskChildTable[] = [
  { table: 'taskwire.task_events', column: 'task_id' },
  { table: 'taskwire.task_output', column: 'task_id' },
];

/** Arbitrary constant: the advisory lock key that lets one node prune at a time. */
export const PRUNE_LOCK_KEY = 7_451_203_011;

const IDENT = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

export async function pruneBatch(
  pool: pg.Pool,
  olderThanSeconds: number,
  limit: number,
  children: readonly TaskChildTable[] = TASK_CHILD_TABLES,
): Promise<Record<string, number> | null> {
  for (const c of children)
    if (!IDENT.test(c.table) || !IDENT.test(c.column)) throw new Error(`bad table name ${c.table}`);
  const deletes = children.map(
    (c, i) => `c${i} as (delete from ${c.table} x using doomed where x.${c.column} = doomed.id returning 1)`,
  );
  const counts = children.map((_c, i) => `(select count(*) from c${i})::int as c${i}`);
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rows: lock } = await client.query<{ locked: boolean }>(
      'select pg_try_advisory_xact_lock($1) as locked',
      [PRUNE_LOCK_KEY],
    );
    if (!lock[0].locked) {
      await client.query('rollback');
      return null;
    }
    const { rows } = await client.query<Record<string, number>>(
      `with doomed as (
         select id from taskwire.tasks
          where finished_at is not null and finished_at < now() - make_interval(secs => $1::float8)
            and status in ('completed', 'failed', 'cancelled')
          order by finished_at limit $2 for update skip locked
       ),
       ${[...deletes, 't as (delete from taskwire.tasks x using doomed where x.id = doomed.id returning 1)'].join(',\n')}
       select ${[...counts, '(select count(*) from t)::int as tasks'].join(', ')}`,
      [olderThanSeconds, limit],
    );
    await client.query('commit');
    const out: Record<string, number> = { 'taskwire.tasks': rows[0].tasks };
    children.forEach((c, i) => {
      out[c.table] = rows[0][`c${i}`];
    });
    return out;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
