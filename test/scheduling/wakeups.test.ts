// Wake-ups, the queue jobs that start the fairest runnable task: a task that could start but has
// no job waiting for it (its wake-up was lost, e.g. with a process) is started by the sweep within
// a heartbeat; a task held back only by a cap gets none from the sweep (no claims spent in vain),
// and gets one when its owner's running attempt ends.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const release = new Set<() => void>();
const held = defineTask({
  name: 'held',
  run: (ctx) =>
    new Promise((resolve) => {
      const done = () => resolve(null);
      release.add(done);
      ctx.signal.addEventListener('abort', done, { once: true });
    }),
});

let t: TestServer;
let alice: string;
before(async () => {
  t = await startTestServer({
    config: { userConcurrency: 1, heartbeatIntervalMs: 200, pollIntervalMs: 60_000 },
    tasks: [held],
  });
  alice = await t.token('alice');
});
after(async () => {
  for (const r of release) r();
  await t.stop();
});

const jobs = async () =>
  (await t.server.pool.query<{ n: number }>('select count(*)::int as n from graphile_worker._private_jobs'))
    .rows[0].n;

test('a task that could start but has no job is started by the sweep', async () => {
  const task = await t.createTask(alice, { type: 'held', delay_ms: 600_000 });
  // Its start time comes, and its wake-up is gone (as if lost with a process).
  await t.server.pool.query(
    "update taskwire.tasks set not_before = now() - interval '1 second' where id = $1",
    [task.task_id],
  );
  await t.server.pool.query('delete from graphile_worker._private_jobs where key = $1', [task.task_id]);
  const from = Date.now();
  await t.waitForStatus(alice, task.task_id, ['running'], 3000);
  console.log(`started ${Date.now() - from} ms after its wake-up was lost`);
  await t.api(alice, 'POST', `/api/tasks/${task.task_id}/cancel`);
  await t.waitForStatus(alice, task.task_id, ['cancelled']);
});

test('a task held back by a cap gets no wake-up from the sweep, and one when a slot frees', async () => {
  const first = await t.createTask(alice, { type: 'held' });
  await t.waitForStatus(alice, first.task_id, ['running']);
  const second = await t.createTask(alice, { type: 'held' });
  await waitFor(async () => (await jobs()) === 1, 'only the running attempt holds a job', 5000);
  await new Promise((r) => setTimeout(r, 1000)); // five sweeps
  assert.equal(await jobs(), 1, 'no wake-up for a task only a cap holds back');
  assert.equal((await t.api(alice, 'GET', `/api/tasks/${second.task_id}`)).body.status, 'queued');
  await t.api(alice, 'POST', `/api/tasks/${first.task_id}/cancel`);
  await t.waitForStatus(alice, second.task_id, ['running'], 3000);
  await t.api(alice, 'POST', `/api/tasks/${second.task_id}/cancel`);
});

test('a capped owner’s backlog moves at the pace of its slots, not of the sweep', async () => {
  const quick = defineTask({
    name: 'quick',
    run: () => new Promise((resolve) => setTimeout(() => resolve(null), 50)),
  });
  // The sweep runs once a minute here: only the wake-ups added as slots free can move the backlog.
  const s = await startTestServer({
    config: { userConcurrency: 2, heartbeatIntervalMs: 60_000, concurrency: 10 },
    tasks: [quick],
  });
  try {
    const token = await s.token('carol');
    const from = Date.now();
    const ids = await Promise.all(
      Array.from({ length: 20 }, async () => (await s.createTask(token, { type: 'quick' })).task_id),
    );
    for (const id of ids) await s.waitForStatus(token, id, ['completed'], 30_000);
    const took = Date.now() - from;
    console.log(`20 tasks of 50 ms, 2 at a time: ${took} ms`);
    // About 0.5 s of work; a backlog left to the sweep would take ten minutes (one a minute).
    assert.ok(took < 15_000, `the backlog took ${took} ms`);
  } finally {
    await s.stop();
  }
});

test('an owner at its cap with a long backlog ahead does not hold another owner back', async () => {
  const dave = await t.token('dave');
  const erin = await t.token('erin');
  const backlog = await Promise.all(
    Array.from({ length: 150 }, async () => (await t.createTask(dave, { type: 'held' })).task_id),
  );
  // Whichever of his tasks the claim took first: the 150 requests reach the server in any order.
  const running = async () =>
    (
      await t.server.pool.query<{ n: number }>(
        "select count(*)::int as n from taskwire.tasks where owner = 'dave' and status = 'running'",
      )
    ).rows[0].n;
  await waitFor(async () => (await running()) === 1, 'dave at his cap');
  // erin's task, of a lower priority, comes after dave's 149 queued ones in the order (more than a
  // claim reads ahead): dave's are held back by his cap, so erin's runs.
  const from = Date.now();
  const task = await t.createTask(erin, { type: 'held', priority: -1 });
  await t.waitForStatus(erin, task.task_id, ['running'], 5000);
  console.log(`erin's task started ${Date.now() - from} ms after it was queued, behind 149 of dave's`);
  for (const id of [task.task_id, ...backlog])
    await t.service.cancel(id === task.task_id ? 'erin' : 'dave', id);
});
