// Runs a function inside one transaction on one pooled client: commit on success, rollback on throw.
import type pg from 'pg';

export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
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
