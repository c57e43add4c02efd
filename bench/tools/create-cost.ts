// The cost of the create statement in PostgreSQL alone (no server): a fresh database migrated by
// taskwire, one owner's backlog of queued tasks inserted directly, then createTasks() timed on
// batches of that owner's new tasks (each inside a transaction that is rolled back, so every call
// sees the same backlog). Twice: on the connection that created the backlog, whose plan was made
// while the table was empty (a server's pool connection on a new database, kept until something
// analyzes the table: with autovacuum off, nothing does), then on a new one after `analyze`.
//   node bench/tools/create-cost.ts [--backlog 10000] [--batch 40] [--calls 50] [--root <tree>]
// --root: another checkout's createTasks (e.g. a `git archive` of an earlier commit), for before/after.
import path from 'node:path';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { migrate } from '../../src/db/index.ts';
import { createTestDatabase } from '../../test/helpers/db.ts';
import { newTaskFixture } from '../../test/helpers/task-fixture.ts';

const { values } = parseArgs({
  options: {
    backlog: { type: 'string', default: '10000' },
    batch: { type: 'string', default: '40' },
    calls: { type: 'string', default: '50' },
    root: { type: 'string' },
  },
});
const backlog = Number(values.backlog);
const batch = Number(values.batch);
const calls = Number(values.calls);
const root = path.resolve(values.root ?? path.join(import.meta.dirname, '../..'));
const { createTasks } = (await import(path.join(root, 'src/queue/sql/createTasks.ts'))) as {
  createTasks: typeof import('../../src/queue/sql/createTasks.ts').createTasks;
};

const db = await createTestDatabase();
const pool = db.pool(2);
const figures: Record<string, number | string> = { root, backlog, batch };
try {
  await migrate(pool);
  const newTasks = (count = batch) => Array.from({ length: count }, () => newTaskFixture('alice'));
  const time = async (label: string, client: pg.PoolClient, n = calls): Promise<void> => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      await client.query('begin');
      const t0 = performance.now();
      await createTasks(client, newTasks());
      ms.push(performance.now() - t0);
      await client.query('rollback');
    }
    if (label === 'warm') return;
    ms.sort((a, b) => a - b);
    const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
    figures[`${label}_p50_ms`] = Number(q(0.5).toFixed(2));
    figures[`${label}_p99_ms`] = Number(q(0.99).toFixed(2));
    console.log(
      `${label.padEnd(10)} ${batch} creates behind ${backlog} queued: p50 ${q(0.5).toFixed(2)} ms  p99 ${q(0.99).toFixed(2)} ms per statement`,
    );
  };
  // The backlog arrives through the same statement on one connection, as through a server's:
  // that connection's plan is made while the table is still (nearly) empty, and kept.
  const early = await pool.connect();
  for (let i = 0; i < 6; i++) await createTasks(early, newTasks()); // the sixth run settles the plan
  for (let n = 6 * batch; n < backlog; n += 500)
    await createTasks(early, newTasks(Math.min(500, backlog - n)));
  await time('early_plan', early);
  early.release();
  await pool.query('analyze taskwire.tasks');
  const fresh = await db.pool(1).connect(); // a new connection: new plans, made with the statistics
  await time('warm', fresh, 6);
  await time('analyzed', fresh);
  fresh.release();
} finally {
  await db.drop();
}
console.log(JSON.stringify(figures));
