// PostgreSQL stopped and started again under load (a real server stop, on a PostgreSQL of this
// test's own so other tests are untouched): the process stays up, /readyz is 503 and writes
// answer 503 while it is down, live progress keeps flowing, and everything resumes afterwards
// with nothing lost and no restart of taskwire.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/db/index.ts';
import { joinTask } from '../helpers/join.ts';
import { quietPort } from '../helpers/ports.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

let dataDir: string;
let pgPort: number;
let postgres: EmbeddedPostgres;
let t: TestServer;

before(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'taskwire-pg-restart-'));
  pgPort = await quietPort();
  postgres = await startEmbeddedPostgres({ dataDir, port: pgPort });
  t = await startTestServer({
    db: { url: postgres.url, name: 'taskwire', drop: async () => {} },
    config: { dbTimeoutMs: 500 },
  });
});
after(async () => {
  await t?.stop();
  await postgres?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

test('PostgreSQL stopped and started under load: nothing lost, no restart', async () => {
  const token = await t.token('alice');
  // Load: 20 tasks of 30 steps at 50 ms, one of them watched.
  const tasks = await Promise.all(
    Array.from({ length: 20 }, () => t.createTask(token, { steps: 30, interval_ms: 50 })),
  );
  const watched = tasks[0].task_id;
  const rec = recorder();
  const sub = await joinTask(t.service, 'alice', watched, rec.sub);
  assert.ok(sub);
  await waitFor(() => rec.events.some((e) => e.name === 'progress'), 'progress before the stop');

  await postgres.stop();
  const progressAtStop = rec.events.filter((e) => e.name === 'progress').length;
  const ready = await t.api('', 'GET', '/readyz');
  assert.equal(ready.status, 503);
  const started = Date.now();
  const refused = await t.api(token, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 });
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, 'unavailable');
  assert.ok(Date.now() - started < 5000, 'a bounded answer');
  await waitFor(
    () => rec.events.filter((e) => e.name === 'progress').length >= progressAtStop + 5,
    'live progress while PostgreSQL is down',
  );

  postgres = await startEmbeddedPostgres({ dataDir, port: pgPort });
  for (const task of tasks) {
    const done = await t.waitForStatus(token, task.task_id, ['completed'], 30_000);
    assert.deepEqual(done.result, { steps: 30 });
  }
  await waitFor(() => rec.events.some((e) => e.name === 'completed'), 'the watched task completes');
  const seqs = rec.events.map((e) => e.payload.seq);
  assert.deepEqual(
    seqs,
    [...new Set(seqs)].sort((a, b) => a - b),
    'each event once, in order',
  );
  await waitFor(async () => (await t.api('', 'GET', '/readyz')).status === 200, 'ready again', 15_000, 100);
  const later = await t.createTask(token, { steps: 1, interval_ms: 0 });
  assert.equal((await t.waitForStatus(token, later.task_id, ['completed'], 15_000)).status, 'completed');
  const { rows } = await t.server.pool.query(
    "select count(*)::int as n from taskwire.task_events where event = 'completed'",
  );
  assert.equal(rows[0].n, 21, 'each task completed exactly once');
  sub.leave();
});
