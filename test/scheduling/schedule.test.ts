// Schedules (defineTask({ schedule })): three real processes on one database each run the schedule,
// and every tick gets exactly one task (owned by TASKWIRE_SCHEDULE_OWNER), with no tick missing;
// each runs once. Ticks missed while every node was down are skipped, or created at the next start
// with `backfill`. A cron expression that does not parse stops the server at start, naming the type.
//
// The issue asks for 3 minutes across 3 processes; `npm test` runs a once-a-second schedule for
// SCHEDULE_SOAK_MS (default 8 s). `SCHEDULE_SOAK_MS=180000 node --test test/scheduling/schedule.test.ts`
// runs the 3-minute version.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { defineTask } from '../../src/index.ts';
import { FAST_LIVENESS } from '../helpers/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { type ServerProcess, spawnServer } from '../helpers/process.ts';
import { startTestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const SOAK_MS = Number(process.env.SCHEDULE_SOAK_MS ?? 8000);
const TICKING = path.join(import.meta.dirname, 'fixtures/ticking.ts');
const BAD_CRON = path.join(import.meta.dirname, 'fixtures/bad-cron.ts');

interface TickRow {
  key: string;
  owner: string;
  status: string;
  input: Record<string, unknown>;
}

async function ticks(pool: pg.Pool, type: string): Promise<TickRow[]> {
  const { rows } = await pool.query<TickRow>(
    `select idempotency_key as key, owner, status, input from taskwire.tasks where type = $1 order by idempotency_key`,
    [type],
  );
  return rows;
}

const tickTime = (key: string) => Date.parse(key.slice(-24));

describe('a schedule across 3 processes', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let nodes: ServerProcess[] = [];
  before(async () => {
    db = await createTestDatabase();
    pool = db.pool(2);
  });
  after(async () => {
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    await db.drop(); // closes the pool first
  });

  test(`ticks exactly once per second for ${SOAK_MS / 1000} s`, async () => {
    nodes = await Promise.all(
      ['tick-a', 'tick-b', 'tick-c'].map((nodeId) =>
        spawnServer({
          databaseUrl: db.url,
          nodeId,
          env: { ...FAST_LIVENESS, TASKWIRE_TASKS: TICKING, TASKWIRE_SCHEDULE_OWNER: 'cron-bot' },
        }),
      ),
    );
    const from = Date.now() + 1000;
    await new Promise((r) => setTimeout(r, SOAK_MS));
    const to = Date.now() - 1000;
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await Promise.all(nodes.map((n) => n.exited));

    const rows = await ticks(pool, 'tick');
    const inWindow = rows.filter((r) => tickTime(r.key) >= from && tickTime(r.key) <= to);
    const expected = Math.floor(to / 1000) - Math.ceil(from / 1000) + 1;
    console.log(`${rows.length} ticks in all, ${inWindow.length} in the window of ${expected} seconds`);
    assert.equal(new Set(rows.map((r) => r.key)).size, rows.length, 'one task per tick');
    assert.equal(inWindow.length, expected, 'no tick of the window missing');
    for (const r of rows) {
      assert.equal(r.owner, 'cron-bot');
      assert.deepEqual(r.input, { from: 'schedule' });
    }
    const ran = inWindow.filter((r) => r.status === 'completed').length;
    assert.ok(ran >= inWindow.length - 1, `the window's ticks ran (${ran} of ${inWindow.length})`);
    const { rows: twice } = await pool.query(
      `select task_id from taskwire.task_events where event = 'completed' group by task_id having count(*) > 1`,
    );
    assert.deepEqual(twice, [], 'no tick ran twice');
  });
});

describe('ticks missed while every node was down', () => {
  const each = (name: string, backfill: boolean) =>
    defineTask({ name, schedule: { cron: '* * * * * *', backfill }, run: () => null });
  const types = [each('plain', false), each('backfilled', true)];

  test('are skipped, or created at the next start with backfill', async () => {
    const first = await startTestServer({ tasks: types, config: { scheduleOwner: 'system' } });
    const db = first.db;
    try {
      await waitFor(async () => (await ticks(first.server.pool, 'backfilled')).length >= 2, 'two ticks');
      await first.server.stop();
      const downFrom = Date.now();
      await new Promise((r) => setTimeout(r, 3000));
      const second = await startTestServer({ tasks: types, db, config: { scheduleOwner: 'system' } });
      try {
        const upAt = Date.now();
        await waitFor(
          async () => (await ticks(second.server.pool, 'plain')).some((r) => tickTime(r.key) > upAt),
          'a tick after the restart',
        );
        const down = (rows: TickRow[]) =>
          rows.filter((r) => tickTime(r.key) > downFrom + 500 && tickTime(r.key) < upAt - 500).length;
        const plain = await ticks(second.server.pool, 'plain');
        const backfilled = await ticks(second.server.pool, 'backfilled');
        assert.equal(down(plain), 0, 'without backfill, no tick of the down time');
        assert.ok(down(backfilled) >= 2, `with backfill, the down time's ticks (${down(backfilled)})`);
        const times = backfilled.map((r) => tickTime(r.key));
        for (let i = 1; i < times.length; i++) assert.equal(times[i] - times[i - 1], 1000, 'no gap');
        assert.ok(backfilled.every((r) => r.owner === 'system'));
      } finally {
        await second.stop();
      }
    } finally {
      await db.drop();
    }
  });
});

describe('a bad schedule', () => {
  test('defineTask refuses a cron expression that does not parse, naming the type', () => {
    assert.throws(
      () => defineTask({ name: 'nightly', schedule: '0 25 * * *', run: () => null }),
      /task type nightly: schedule "0 25 \* \* \*" is not a valid cron expression/,
    );
    assert.throws(
      () => defineTask({ name: 'nightly', schedule: 'every day', run: () => null }),
      /task type nightly: schedule/,
    );
    assert.throws(
      () =>
        defineTask({
          name: 'typed',
          input: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } } as never,
          schedule: { cron: '0 * * * *', input: {} },
          run: () => null,
        }),
      /task type typed: schedule input does not match/,
    );
  });

  test('a server given one stops at start with that error', async () => {
    const db = await createTestDatabase();
    try {
      await assert.rejects(
        spawnServer({ databaseUrl: db.url, nodeId: 'bad-cron', env: { TASKWIRE_TASKS: BAD_CRON } }),
        /task type nightly-report: schedule "0 25 \* \* \*" is not a valid cron expression/,
      );
    } finally {
      await db.drop();
    }
  });
});
