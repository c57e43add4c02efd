// Migrations run once, under an advisory lock: processes starting at once never race.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createPool, loadMigrations, migrate } from '../../src/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestServer } from '../helpers/server.ts';

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test('five concurrent migrations on a fresh database apply each version exactly once', async () => {
  const pools = Array.from({ length: 5 }, () =>
    createPool({ connectionString: db.url, max: 3, timeoutMs: 10_000 }),
  );
  try {
    const applied = await Promise.all(pools.map((p) => migrate(p)));
    const versions = (await loadMigrations()).map((m) => m.version);
    assert.deepEqual(
      applied.flat().sort((x, y) => x - y),
      versions,
      'each version applied by exactly one of them',
    );
    const { rows } = await pools[0].query('select version from taskwire.schema_migrations order by version');
    assert.deepEqual(
      rows.map((r) => r.version),
      versions,
    );
    assert.deepEqual(await migrate(pools[0]), [], 'a later start applies nothing');
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('two servers starting at once on one database both come up and share it', async () => {
  const other = await createTestDatabase();
  try {
    const [a, b] = await Promise.all([startTestServer({ db: other }), startTestServer({ db: other })]);
    try {
      const token = await a.token('alice');
      const task = await a.createTask(token, { steps: 1, interval_ms: 0 });
      const seen = await b.waitForStatus(token, task.task_id, ['completed']);
      assert.equal(seen.status, 'completed');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  } finally {
    await other.drop();
  }
});

test('history queries are index-backed', async () => {
  const pool = createPool({ connectionString: db.url, max: 2, timeoutMs: 10_000 });
  try {
    await migrate(pool);
    await pool.query('set enable_seqscan = off');
    for (const where of [
      "owner = 'a'",
      "owner = 'a' and status = 'queued'",
      "owner = 'a' and type = 'demo'",
    ]) {
      const { rows } = await pool.query(
        `explain select * from taskwire.tasks where ${where} order by inserted_at desc, id desc limit 21`,
      );
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      assert.match(plan, /Index Scan using tasks_owner_\w+_idx/, plan);
      assert.doesNotMatch(plan, /Sort/, `no sort needed: ${plan}`);
    }
  } finally {
    await pool.end();
  }
});
