// Retention (TASKWIRE_RETENTION): finished tasks older than it, with their audit rows and stored
// output (and any other per-task table the pruner is told of), are deleted in small batches by one node at a time,
// counted in taskwire_pruned_rows_total; tasks in flight and recent ones stay; 0 keeps everything.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import { PRUNE_LOCK_KEY, TASK_CHILD_TABLES } from '../../src/db/index.ts';
import { Pruner } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

let t: TestServer;
let db: pg.Client;

before(async () => {
  // The server's own pruner runs every 100 ms on a retention of one hour.
  t = await startTestServer({ retentionSeconds: 3600, pruneIntervalMs: 100, pruneBatchSize: 7 });
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
});
after(async () => {
  await db.end();
  await t.stop();
});

/** Inserts `n` tasks of `status` finished `agoSeconds` ago (null: in flight), each with 3 audit rows and an output row. */
async function seed(n: number, status: string, agoSeconds: number | null, owner = 'old'): Promise<string[]> {
  // One statement, so the running pruner never sees a task without its audit rows.
  const { rows } = await db.query<{ id: string }>(
    `with t as (
       insert into taskwire.tasks (id, owner, type, status, input, max_attempts, inserted_at, finished_at)
       select gen_random_uuid(), $1, 'demo', $2, '{}', 3, now() - interval '30 days',
              case when $3::float8 is null then null else now() - make_interval(secs => $3::float8) end
         from generate_series(1, $4) returning id
     ), e as (insert into taskwire.task_events (task_id, seq, event) select id, s, 'x' from t, generate_series(1, 3) s
     ), o as (insert into taskwire.task_output (task_id, first_idx, attempt, chunks, bytes) select id, 0, 1, '["a","b"]', 8 from t)
     select id from t`,
    [owner, status, agoSeconds, n],
  );
  return rows.map((r) => r.id);
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return Number((await db.query(sql, params)).rows[0].count);
}

async function prunedMetric(table: string): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const m = text.match(
    new RegExp(`taskwire_pruned_rows_total\\{table="${table.replace('.', '\\.')}"\\} (\\d+)`),
  );
  return m ? Number(m[1]) : 0;
}

test('TASKWIRE_RETENTION reads durations; 0 keeps everything; the default is 7 days', () => {
  assert.equal(loadConfig({}).retentionSeconds, 7 * 86_400);
  assert.equal(loadConfig({ TASKWIRE_RETENTION: '0' }).retentionSeconds, 0);
  assert.equal(loadConfig({ TASKWIRE_RETENTION: '12h' }).retentionSeconds, 43_200);
  assert.equal(loadConfig({ TASKWIRE_RETENTION: '30m' }).retentionSeconds, 1800);
  assert.throws(() => loadConfig({ TASKWIRE_RETENTION: '7 days' }), /TASKWIRE_RETENTION/);
});

test('finished tasks past the retention go, with their audit rows, in batches; the rest stay', async () => {
  const before = await prunedMetric('taskwire.tasks');
  const old = [
    ...(await seed(20, 'completed', 2 * 3600)),
    ...(await seed(5, 'failed', 5 * 3600)),
    ...(await seed(5, 'cancelled', 90 * 86_400)),
  ];
  const recent = await seed(4, 'completed', 600, 'recent');
  const inFlight = [
    ...(await seed(3, 'queued', null, 'flight')),
    ...(await seed(2, 'running', null, 'flight')),
  ];

  await waitFor(
    async () => (await count('select count(*) from taskwire.tasks where id = any($1)', [old])) === 0,
    'the old tasks pruned',
  );
  assert.equal(await count('select count(*) from taskwire.task_events where task_id = any($1)', [old]), 0);
  assert.equal(await count('select count(*) from taskwire.tasks where id = any($1)', [recent]), 4);
  assert.equal(await count('select count(*) from taskwire.tasks where id = any($1)', [inFlight]), 5);
  assert.equal(
    await count('select count(*) from taskwire.task_events where task_id = any($1)', [recent]),
    12,
  );
  await waitFor(async () => (await prunedMetric('taskwire.tasks')) - before === 30, 'metric: 30 tasks');
  assert.equal(await prunedMetric('taskwire.task_events'), 90, '3 audit rows each');
});

test('one node at a time: while another holds the lock, a pruner deletes nothing', async () => {
  const holder = new pg.Client({ connectionString: t.db.url });
  await holder.connect();
  const pruner = new Pruner({
    pool: t.server.pool,
    retentionSeconds: 3600,
    intervalMs: 60_000,
    batchSize: 100,
    log: pino({ level: 'silent' }),
  });
  await t.server.pruner.stop(); // the server's own pruner would race the assertions below
  try {
    await holder.query('select pg_advisory_lock($1)', [PRUNE_LOCK_KEY]);
    const old = await seed(3, 'completed', 2 * 3600);
    assert.equal(await pruner.runOnce(), null, 'another node is pruning');
    assert.equal(await count('select count(*) from taskwire.tasks where id = any($1)', [old]), 3);
    await holder.query('select pg_advisory_unlock($1)', [PRUNE_LOCK_KEY]);
    const deleted = await pruner.runOnce();
    assert.deepEqual(deleted, { 'taskwire.tasks': 3, 'taskwire.task_events': 9, 'taskwire.task_output': 3 });
  } finally {
    await holder.end();
  }
});

test('another per-task table is one more entry: its rows go with their tasks and are counted', async () => {
  await db.query('create table taskwire.test_output (task_id uuid not null, data text)');
  const old = await seed(4, 'completed', 2 * 3600);
  await db.query(`insert into taskwire.test_output select id, 'chunk' from unnest($1::uuid[]) id`, [old]);
  const pruner = new Pruner({
    pool: t.server.pool,
    retentionSeconds: 3600,
    intervalMs: 60_000,
    batchSize: 3,
    log: pino({ level: 'silent' }),
    children: [...TASK_CHILD_TABLES, { table: 'taskwire.test_output', column: 'task_id' }],
  });
  assert.deepEqual(await pruner.runOnce(), {
    'taskwire.tasks': 4,
    'taskwire.task_events': 12,
    'taskwire.task_output': 4,
    'taskwire.test_output': 4,
  });
  assert.equal(await count('select count(*) from taskwire.test_output'), 0);
});

test('a retention of 0 keeps everything', async () => {
  const old = await seed(2, 'completed', 400 * 86_400);
  const pruner = new Pruner({
    pool: t.server.pool,
    retentionSeconds: 0,
    intervalMs: 100,
    batchSize: 100,
    log: pino({ level: 'silent' }),
  });
  pruner.start(); // does nothing
  assert.deepEqual(await pruner.runOnce(), {});
  await pruner.stop();
  assert.equal(await count('select count(*) from taskwire.tasks where id = any($1)', [old]), 2);
});
