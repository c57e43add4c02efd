// closePool: when it resolves, every connection of the pool has closed (pool.end() alone resolves
// once it has only asked them to), so a database dropped or stopped next cuts nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type pg from 'pg';
import { closePool, createPool } from '../../src/db/index.ts';
import { createTestDatabase } from '../helpers/db.ts';

test('closePool resolves once every connection has closed, and nothing is reported lost', async () => {
  const db = await createTestDatabase();
  try {
    const lost: Error[] = [];
    const pool = createPool({
      connectionString: db.url,
      max: 4,
      timeoutMs: 10_000,
      onError: (e) => lost.push(e),
    });
    const clients: pg.PoolClient[] = [];
    const ended = new Set<pg.PoolClient>();
    pool.on('connect', (client) => {
      clients.push(client);
      client.once('end', () => ended.add(client));
    });
    // Four connections at once, all back in the pool (idle) before it closes.
    await Promise.all([1, 2, 3, 4].map(() => pool.query('select pg_sleep(0.05)')));
    assert.equal(clients.length, 4);
    await closePool(pool);
    assert.equal(ended.size, clients.length, 'every connection had closed when closePool resolved');
    await db.drop();
    assert.deepEqual(lost, []);
  } finally {
    await db.drop();
  }
});
