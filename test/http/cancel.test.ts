// POST /api/tasks/:id/cancel: a queued task (its job never runs), a running one (its attempt ends
// `cancelled`, not failed), a terminal one (409), another user's (404).
//
// The server runs one job at a time (concurrency 1) and a slow "blocker" task holds that slot, so
// a task created meanwhile is reliably still queued when it is cancelled: no race on timing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { assertError, assertTaskShape } from './support.ts';

const QUICK = { steps: 1, interval_ms: 0 };
const SLOW = { steps: 100, interval_ms: 50 }; // 5 s unless cancelled
const UNKNOWN_ID = '01890000-0000-7000-8000-000000000000';

let t: TestServer;
let alice: string;
let bob: string;
let blocker: any;
let victim: any;

async function events(id: string): Promise<any[]> {
  const res = await t.api(alice, 'GET', `/api/tasks/${id}/events`);
  assert.equal(res.status, 200);
  return res.body.events;
}

async function jobsFor(id: string): Promise<number> {
  const { rows } = await t.server.pool.query<{ n: number }>(
    'select count(*)::int as n from graphile_worker._private_jobs where key = $1',
    [id],
  );
  return rows[0].n;
}

/** Waits until the task runs and has reported some progress (so it is mid-attempt). */
async function runningWithProgress(token: string, id: string): Promise<any> {
  return waitFor(async () => {
    const task = (await t.api(token, 'GET', `/api/tasks/${id}`)).body;
    return task.status === 'running' && task.progress > 0 ? task : null;
  }, `task ${id} running with progress`);
}

before(async () => {
  t = await startTestServer({ concurrency: 1 });
  alice = await t.token('alice');
  bob = await t.token('bob');
  blocker = await t.createTask(alice, SLOW);
  await runningWithProgress(alice, blocker.task_id);
});

after(async () => {
  await t?.stop();
});

describe('POST /api/tasks/:id/cancel', () => {
  test('a queued task is 202 with status cancelled, attempt 0, and its job is removed', async () => {
    victim = await t.createTask(alice, QUICK);
    assert.equal(await jobsFor(victim.task_id), 1);
    assert.equal((await t.api(alice, 'GET', `/api/tasks/${victim.task_id}`)).body.status, 'queued');
    const res = await t.api(alice, 'POST', `/api/tasks/${victim.task_id}/cancel`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assertTaskShape(res.body);
    assert.equal(res.body.task_id, victim.task_id);
    assert.equal(res.body.status, 'cancelled');
    assert.equal(res.body.attempt, 0);
    assert.equal(res.body.error, null);
    assert.equal(res.body.result, null);
    assert.ok(res.body.seq > 0);
    assert.equal(await jobsFor(victim.task_id), 0);
    const got = (await t.api(alice, 'GET', `/api/tasks/${victim.task_id}`)).body;
    assert.equal(got.status, 'cancelled');
  });

  test("another user's task is 404 not_found (same body as an unknown id) and is left running", async () => {
    const foreign = await t.api(bob, 'POST', `/api/tasks/${blocker.task_id}/cancel`);
    const unknown = await t.api(bob, 'POST', `/api/tasks/${UNKNOWN_ID}/cancel`);
    assertError(foreign, 404, 'not_found');
    assertError(unknown, 404, 'not_found');
    assert.deepEqual(foreign.body, unknown.body);
    assertError(await t.api(alice, 'POST', '/api/tasks/not-a-uuid/cancel'), 404, 'not_found');
    assert.equal((await t.api(alice, 'GET', `/api/tasks/${blocker.task_id}`)).body.status, 'running');
  });

  test('a running task is 202 with status cancelled; the attempt ends cancelled, not failed', async () => {
    const res = await t.api(alice, 'POST', `/api/tasks/${blocker.task_id}/cancel`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assertTaskShape(res.body);
    assert.equal(res.body.status, 'cancelled');
    assert.equal(res.body.attempt, 1);
    assert.equal(res.body.error, null);
    assert.equal(res.body.result, null);
    assert.ok(res.body.progress > 0 && res.body.progress < 1, `progress ${res.body.progress}`);
    // Progress checkpoints may sit in between, as the snapshotter's timing falls.
    const trail = (await events(blocker.task_id)).filter((e) => e.event !== 'progress');
    assert.deepEqual(
      trail.map((e) => e.event),
      ['created', 'started', 'cancelled'],
    );
    assert.equal(trail.at(-1).attempt, 1);
    const metrics = (await t.api('', 'GET', '/metrics')).body as string;
    assert.match(metrics, /taskwire_attempts_total\{[^}]*outcome="cancelled"[^}]*\} 1\b/);
    assert.doesNotMatch(metrics, /taskwire_attempts_total\{[^}]*outcome="failed"/);
  });

  test('once the worker is free, the cancelled queued task never runs and the cancelled running one is not retried', async () => {
    // The one worker slot is free now: a new task runs to the end. Had the victim's job survived,
    // it was queued earlier and would have run first.
    const next = await t.createTask(alice, QUICK);
    await t.waitForStatus(alice, next.task_id, ['completed']);
    const v = (await t.api(alice, 'GET', `/api/tasks/${victim.task_id}`)).body;
    assert.equal(v.status, 'cancelled');
    assert.equal(v.attempt, 0);
    assert.deepEqual(
      (await events(victim.task_id)).map((e) => e.event),
      ['created', 'cancelled'],
    );
    const b = (await t.api(alice, 'GET', `/api/tasks/${blocker.task_id}`)).body;
    assert.equal(b.status, 'cancelled');
    assert.equal(b.attempt, 1);
    assert.deepEqual(
      (await events(blocker.task_id)).map((e) => e.event).filter((e) => e !== 'progress'),
      ['created', 'started', 'cancelled'],
    );
    assert.equal(await jobsFor(blocker.task_id), 0);
  });

  test('a completed task is 409 conflict and stays completed', async () => {
    const task = await t.createTask(alice, QUICK);
    await t.waitForStatus(alice, task.task_id, ['completed']);
    const res = await t.api(alice, 'POST', `/api/tasks/${task.task_id}/cancel`);
    const error = assertError(res, 409, 'conflict');
    assert.match(error.message, /completed/);
    const got = (await t.api(alice, 'GET', `/api/tasks/${task.task_id}`)).body;
    assert.equal(got.status, 'completed');
    assert.deepEqual(
      (await events(task.task_id)).map((e) => e.event),
      ['created', 'started', 'completed'],
    );
  });

  test('an already cancelled task is 409 conflict', async () => {
    assertError(await t.api(alice, 'POST', `/api/tasks/${victim.task_id}/cancel`), 409, 'conflict');
    assertError(await t.api(alice, 'POST', `/api/tasks/${blocker.task_id}/cancel`), 409, 'conflict');
  });

  test('a failed task is 409 conflict', async () => {
    const task = await t.createTask(alice, { ...QUICK, fail_at_step: 1, max_attempts: 1 });
    await t.waitForStatus(alice, task.task_id, ['failed']);
    assertError(await t.api(alice, 'POST', `/api/tasks/${task.task_id}/cancel`), 409, 'conflict');
  });

  test('the server keeps serving after the cancels: a good POST runs to completion', async () => {
    const task = await t.createTask(alice, QUICK);
    assert.equal((await t.waitForStatus(alice, task.task_id, ['completed'])).attempt, 1);
  });
});
