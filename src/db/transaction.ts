// Runs a function inside one transaction on one pooled client: commit on success, rollback on throw.
import type pg from 'pg';

export function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, 'begin', fn);
}

/**
 * Read-only statements that must agree with each other (counts that add up): they all see the
 * database as it was at the first of them (REPEATABLE READ), on one client, in the order issued.
 */
export function withSnapshot<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, 'begin isolation level repeatable read read only', fn);
}

async function inTransaction<T>(
  pool: pg.Pool,
  begin: string,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(begin);
    try {
      const value = await fn(client);
      await client.query('commit');
      return value;
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    }
  } finally {
    client.release();
  }
}
