// The cost of the fair claim in PostgreSQL alone (no server): a fresh database migrated by
// taskwire, a backlog of queued tasks inserted directly, then `taskwire.pick_tasks()` timed
// (inside a transaction that is rolled back, so every call sees the same backlog):
//   node bench/tools/claim-cost.ts [--backlog 10000] [--calls 200] [--k 1]
// Shapes: one owner's backlog with no caps; the same with caps, the owner under its cap; and the
// worst case, the owner at its cap with its backlog ahead of another owner's task.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { migrate } from '../../src/db/index.ts';
import { createTestDatabase } from '../../test/helpers/db.ts';

const { values } = parseArgs({
  options: {
    backlog: { type: 'string', default: '10000' },
    calls: { type: 'string', default: '200' },
    k: { type: 'string', default: '1' },
  },
});
const backlog = Number(values.backlog);
const calls = Number(values.calls);
const k = Number(values.k);

const db = await createTestDatabase();
const pool = new pg.Pool({ connectionString: db.url, max: 2 });
try {
  await migrate(pool);
  const insert = (owner: string, n: number, status: string, vtimeFrom: number) =>
    pool.query(
      `insert into taskwire.tasks (id, owner, type, status, input, max_attempts, vtime)
       select gen_random_uuid(), $1, 'demo', $2, '{}', 3, $3 + g from generate_series(1, $4) g`,
      [owner, status, vtimeFrom, n],
    );
  await insert('alice', backlog, 'queued', 0);
  await insert('alice', 20, 'running', 0);
  await insert('bob', 1, 'queued', backlog + 1);
  await pool.query('analyze taskwire.tasks');

  const time = async (label: string, userCap: number | null) => {
    const client = await pool.connect();
    const ms: number[] = [];
    let got = 0;
    try {
      for (let i = 0; i < calls; i++) {
        await client.query('begin');
        const t0 = performance.now();
        const { rows } = await client.query('select * from taskwire.pick_tasks($1, $2, $3)', [
          k,
          userCap,
          '{}',
        ]);
        ms.push(performance.now() - t0);
        got += rows.length;
        await client.query('rollback');
      }
    } finally {
      client.release();
    }
    ms.sort((a, b) => a - b);
    const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(3);
    console.log(`${label.padEnd(58)} p50 ${q(0.5)} ms  p99 ${q(0.99)} ms  (${got / calls} task(s) per call)`);
  };
  console.log(`backlog: ${backlog} queued tasks of alice (20 running), 1 of bob behind them; k = ${k}`);
  await time('no caps', null);
  await time('TASKWIRE_USER_CONCURRENCY=100 (alice under her cap)', 100);
  await time('TASKWIRE_USER_CONCURRENCY=20 (alice at her cap, her backlog ahead of bob)', 20);
} finally {
  await pool.end();
  await db.drop();
}
