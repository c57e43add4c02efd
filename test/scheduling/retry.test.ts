// POST /api/tasks/:id/retry (api.md): a failed or cancelled task starts a new series of attempts:
// 202 with the task queued, `attempt` keeps rising and the budget of max_attempts is fresh, an
// audited `retried` event reaches its topics, a cancel mark is cleared; 409 for any other status
// (nothing written), 404 for another user's task or an unknown id.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
import { joinTask } from '../helpers/join.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';
import { assertError, assertTaskShape, rowCounts } from '../http/support.ts';

/** Fails while the input says so; `until` lets a test decide when it may succeed. */
let allowSuccess = false;
const fickle = defineTask({
  name: 'fickle',
  maxAttempts: 2,
  run(ctx) {
    if (!allowSuccess) throw new Error(`attempt ${ctx.attempt} fails`);
    return { attempt: ctx.attempt };
  },
});
const waiting = defineTask({
  name: 'waiting',
  run: (ctx) =>
    new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(null), { once: true })),
});

let t: TestServer;
let alice: string;
let bob: string;
before(async () => {
  t = await startTestServer({ tasks: [fickle, waiting] });
  [alice, bob] = await Promise.all([t.token('alice'), t.token('bob')]);
});
after(() => t.stop());

test('a failed task runs again: attempt keeps rising, a fresh budget, `retried` audited and published', async () => {
  allowSuccess = false;
  const created = await t.createTask(alice, { type: 'fickle' });
  const failed = await t.waitForStatus(alice, created.task_id, ['failed']);
  assert.equal(failed.attempt, 2);
  assert.equal(failed.max_attempts, 2);

  const rec = recorder();
  const joined = await joinTask(t.service, 'alice', created.task_id, rec.sub);
  assert.ok(joined);
  assert.equal(
    (await t.api(bob, 'POST', `/api/tasks/${created.task_id}/retry`)).status,
    404,
    "another user's task is not found",
  );
  allowSuccess = false; // the new series fails once, then succeeds: attempts 3 and 4
  const res = await t.api(alice, 'POST', `/api/tasks/${created.task_id}/retry`);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assertTaskShape(res.body);
  assert.equal(res.body.status, 'queued');
  assert.equal(res.body.attempt, 2, 'the attempt number is kept; the next run is attempt 3');
  assert.equal(res.body.max_attempts, 4, 'a fresh budget of 2 more attempts');
  assert.equal(res.body.error, null);
  assert.ok(res.body.seq > failed.seq);
  const retried = await waitFor(() => rec.events.find((e) => e.name === 'retried'), 'retried on the topic');
  assert.equal(retried.payload.status, 'queued');
  assert.equal(retried.payload.seq, res.body.seq);
  await waitFor(() => rec.events.some((e) => e.name === 'retrying' && e.payload.attempt === 3), 'attempt 3');
  allowSuccess = true;
  const done = await t.waitForStatus(alice, created.task_id, ['completed']);
  assert.equal(done.attempt, 4);
  assert.deepEqual(done.result, { attempt: 4 });
  joined.leave();

  const trail = (await t.api(alice, 'GET', `/api/tasks/${created.task_id}/events`)).body.events;
  const names = trail.map((e: { event: string }) => e.event);
  assert.deepEqual(
    names.filter((n: string) => n !== 'progress'),
    [
      'created',
      'started',
      'retrying',
      'started',
      'failed',
      'retried',
      'started',
      'retrying',
      'started',
      'completed',
    ],
  );
  const audit = trail.find((e: { event: string }) => e.event === 'retried');
  assert.equal(audit.data.by, 'alice');
  assert.equal(audit.data.previous_status, 'failed');
});

test('a cancelled task can be retried; its cancel mark is cleared so it runs', async () => {
  const created = await t.createTask(alice, { type: 'waiting' });
  await t.waitForStatus(alice, created.task_id, ['running']);
  assert.equal((await t.api(alice, 'POST', `/api/tasks/${created.task_id}/cancel`)).status, 202);
  await t.waitForStatus(alice, created.task_id, ['cancelled']);
  const res = await t.api(alice, 'POST', `/api/tasks/${created.task_id}/retry`);
  assert.equal(res.status, 202);
  const running = await t.waitForStatus(alice, created.task_id, ['running']);
  assert.equal(running.attempt, 2);
  const { rows } = await t.server.pool.query('select cancel_requested_at from taskwire.tasks where id = $1', [
    created.task_id,
  ]);
  assert.equal(rows[0].cancel_requested_at, null);
  await t.api(alice, 'POST', `/api/tasks/${created.task_id}/cancel`);
  await t.waitForStatus(alice, created.task_id, ['cancelled']);
});

test('retry of a running, queued or completed task is 409 conflict and writes nothing', async () => {
  const running = await t.createTask(alice, { type: 'waiting' });
  await t.waitForStatus(alice, running.task_id, ['running']);
  allowSuccess = true;
  const completed = await t.createTask(alice, { type: 'fickle' });
  await t.waitForStatus(alice, completed.task_id, ['completed']);
  const queued = await t.createTask(alice, { type: 'fickle', delay_ms: 60_000 });
  for (const id of [running.task_id, completed.task_id, queued.task_id]) {
    const before = await rowCounts(t.server.pool);
    const res = await t.api(alice, 'POST', `/api/tasks/${id}/retry`);
    const error = assertError(res, 409, 'conflict');
    assert.match(error.message, /failed or cancelled/);
    assert.equal(error.task.task_id, id);
    assert.deepEqual(await rowCounts(t.server.pool), before);
  }
  const unknown = await t.api(alice, 'POST', '/api/tasks/01890000-0000-7000-8000-000000000000/retry');
  assertError(unknown, 404, 'not_found');
  await t.api(alice, 'POST', `/api/tasks/${running.task_id}/cancel`);
  await t.api(alice, 'POST', `/api/tasks/${queued.task_id}/cancel`);
});

test('an admin retry (owner check waived by the caller) retries any user’s task', async () => {
  allowSuccess = false;
  const created = await t.createTask(bob, { type: 'fickle', max_attempts: 1 });
  await t.waitForStatus(bob, created.task_id, ['failed']);
  allowSuccess = true;
  const result = await t.service.retry(null, created.task_id, 'ops');
  assert.equal(result.kind, 'accepted');
  await t.waitForStatus(bob, created.task_id, ['completed']);
});
