// Nothing lost: tasks of a killed process run again (after a restart at once; on another live
// process within 15 s of the kill), a paused "zombie" process can't complete a task twice, a
// SIGTERM drains and exits 0, and a cancel reaches the process that runs the task. Every process
// binds port 0. A restart frees its old jobs because it comes back under the same node id
// (TASKWIRE_NODE_ID; the default id is host:port, which is why a restart on the same port does it
// in production): the tests give the id, so the restarted process needs no particular port.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { post, type ServerProcess, spawnServer, testToken } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

let db: TestDatabase;
let pool: pg.Pool;
const procs: ServerProcess[] = [];

before(async () => {
  db = await createTestDatabase();
  pool = db.pool(3);
});
after(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await db.drop(); // closes the pool first
});

async function start(nodeId: string, env: Record<string, string> = {}) {
  const p = await spawnServer({ databaseUrl: db.url, nodeId, env });
  procs.push(p);
  return p;
}

/** Stops processes and waits for them, so none outlives its test (and rescues the next one's jobs). */
async function stopAll(ps: ServerProcess[]): Promise<void> {
  for (const p of ps) p.kill('SIGTERM');
  await Promise.all(ps.map((p) => p.exited));
}

async function createMany(url: string, n: number, body: Record<string, unknown>): Promise<string[]> {
  const token = await testToken('alice');
  const ids: string[] = [];
  while (ids.length < n) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, n - ids.length) }, () => post(url, token, '/api/tasks', body)),
    );
    for (const res of batch) {
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(res.body.task_id);
    }
  }
  return ids;
}

async function statuses(ids: string[]): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ status: string; n: string }>(
    'select status, count(*) as n from taskwire.tasks where id = any($1) group by status',
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

async function completions(ids: string[]): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ task_id: string; n: string }>(
    "select task_id, count(*) as n from taskwire.task_events where task_id = any($1) and event = 'completed' group by task_id",
    [ids],
  );
  return new Map(rows.map((r) => [r.task_id, Number(r.n)]));
}

async function allCompletedOnce(ids: string[], timeoutMs: number) {
  await waitFor(
    async () => (await statuses(ids)).completed === ids.length,
    `all ${ids.length} tasks completed`,
    timeoutMs,
    100,
  );
  const done = await completions(ids);
  for (const id of ids) assert.equal(done.get(id), 1, `task ${id} completed exactly once`);
}

describe('crash recovery', { concurrency: false }, () => {
  // Each test starts from no running process: one left by a failed test (say, a heartbeating
  // peer that a short dead-after threshold keeps rescuing) would disturb the next.
  afterEach(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
  });

  test('kill -9 with tasks in flight, restart: every task completes, none twice', async () => {
    const p1 = await start('crash-a');
    const ids = await createMany(p1.url, 300, { steps: 10, interval_ms: 300 });
    await waitFor(async () => ((await statuses(ids)).running ?? 0) >= 50, 'tasks running', 20_000, 50);
    p1.kill('SIGKILL');
    await p1.exited;
    const killedAt = Date.now();
    // The same node restarts (same node id, any port): it frees its old jobs at once.
    const p1b = await start('crash-a');
    await allCompletedOnce(ids, 30_000);
    console.log(
      `# kill -9 + restart: ${ids.length} tasks all terminal ${Date.now() - killedAt} ms after the kill`,
    );
    p1b.kill('SIGTERM');
    assert.equal(await p1b.exited, 0);
  });

  test('two processes: the survivor runs a killed process’s tasks, each rescue within 15 s of the kill', async () => {
    const a = await start('pair-a');
    // 25 s tasks: none may end on a before b is up and a is killed (on a loaded machine a start
    // takes 10 s and more).
    const ids = await createMany(a.url, 20, { steps: 250, interval_ms: 100 });
    await waitFor(async () => (await statuses(ids)).running === 20, 'all 20 running on a', 10_000, 50);
    const b = await start('pair-b');
    assert.equal((await statuses(ids)).running, 20, 'still all running on a when it is killed');
    a.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();
    await allCompletedOnce(ids, 70_000);
    const { rows } = await pool.query<{ started: Date }>(
      "select min(inserted_at) as started from taskwire.task_events where task_id = any($1) and event = 'started' and data->>'node' = 'pair-b' group by task_id",
      [ids],
    );
    assert.equal(rows.length, 20, 'b ran every task');
    const worst = Math.max(...rows.map((r) => r.started.getTime() - killedAt));
    console.log(`# rescue by a live peer: slowest rescue started ${worst} ms after the kill`);
    assert.ok(worst < 15_000, `every rescue starts within 15 s (slowest ${worst} ms)`);
    b.kill('SIGTERM');
    assert.equal(await b.exited, 0);
  });

  test('a zombie (SIGSTOP past the threshold, then SIGCONT) cannot complete its old attempt', async () => {
    const env = { TASKWIRE_HEARTBEAT_MS: '300', TASKWIRE_NODE_DEAD_AFTER_MS: '1500' };
    const z = await start('zombie', env);
    // 10 s: the zombie's attempt must outlast the peer's start (seconds, more on a loaded machine).
    const [id] = await createMany(z.url, 1, { steps: 100, interval_ms: 100 });
    await waitFor(async () => (await statuses([id])).running === 1, 'running on the zombie', 10_000, 50);
    const peer = await start('healthy', env);
    z.kill('SIGSTOP');
    assert.equal((await statuses([id])).running, 1, 'still running on the zombie when it is stopped');
    await allCompletedOnce([id], 45_000);
    z.kill('SIGCONT');
    // The zombie's own attempt ends within 10 s of running on; its end write is refused.
    await waitFor(
      () => /attempt end refused: no longer current/.test(z.output()),
      'the zombie to try its end and be refused',
      30_000,
      50,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; its output:\n${z.output()}`);
    });
    const done = await completions([id]);
    assert.equal(done.get(id), 1, 'completed exactly once');
    const { rows } = await pool.query('select attempt, status from taskwire.tasks where id = $1', [id]);
    assert.equal(rows[0].status, 'completed');
    assert.equal(rows[0].attempt, 2, 'the rescue attempt is the one that counts');
    assert.match(z.output(), /no longer current|fenced/i, 'the zombie was refused');
    await stopAll([z, peer]);
  });

  test('SIGTERM under load exits 0 inside the deadline; every task completes after a restart', async () => {
    const env = { TASKWIRE_SHUTDOWN_TIMEOUT_MS: '1000' };
    const s = await start('drain', env);
    const ids = await createMany(s.url, 20, { steps: 50, interval_ms: 100 });
    await waitFor(async () => ((await statuses(ids)).running ?? 0) >= 10, 'tasks running', 10_000, 50);
    const sent = Date.now();
    s.kill('SIGTERM');
    assert.equal(await s.exited, 0);
    const took = Date.now() - sent;
    assert.ok(took < 1000 + 5000, `exited in ${took} ms`);
    const again = await start('drain', env);
    await allCompletedOnce(ids, 40_000);
    again.kill('SIGTERM');
    assert.equal(await again.exited, 0);
  });

  test('a cancel sent to one process ends the attempt running in another', async () => {
    const a = await start('cancel-a');
    const token = await testToken('alice');
    const created = await post(a.url, token, '/api/tasks', { steps: 100, interval_ms: 100 });
    const id = created.body.task_id;
    await waitFor(async () => (await statuses([id])).running === 1, 'running on a', 10_000, 50);
    const b = await start('cancel-b');
    const res = await post(b.url, token, `/api/tasks/${id}/cancel`, {});
    assert.equal(res.status, 202);
    await waitFor(async () => (await statuses([id])).cancelled === 1, 'cancelled by a', 10_000, 50);
    const { rows } = await pool.query('select attempt from taskwire.tasks where id = $1', [id]);
    assert.equal(rows[0].attempt, 1);
    await stopAll([a, b]);
  });
});
