// An attempt's ends: retries with exponential backoff up to max_attempts (retrying carries
// retry_at), cancel of a running attempt, a per-type timeout, and handler faults of every kind.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defineTask, retryDelay } from '../../src/tasks/index.ts';
import { joinTask } from '../helpers/join.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

const flaky = defineTask<{ succeed_on: number }>({
  name: 'flaky',
  run(ctx) {
    if (ctx.attempt < ctx.input.succeed_on) throw new Error(`attempt ${ctx.attempt} fails`);
    return { attempt: ctx.attempt };
  },
});

let cancelSeen = false;
const patient = defineTask({
  name: 'patient',
  async run(ctx) {
    ctx.progress(0.1, 'waiting');
    await new Promise<void>((resolve) =>
      ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    cancelSeen = true;
    return 'finished anyway'; // ignored: the attempt ended as cancelled
  },
});

const hanging = defineTask({
  name: 'hanging',
  timeoutMs: 200,
  maxAttempts: 2,
  run: () => new Promise(() => {}), // never settles and ignores its signal
});

const faults = defineTask<{ kind: string }>({
  name: 'faults',
  maxAttempts: 1,
  run(ctx) {
    switch (ctx.input.kind) {
      case 'sync-throw':
        throw new Error('sync boom');
      case 'non-error':
        return Promise.reject({ weird: true });
      case 'string':
        throw 'a plain string';
      case 'bad-progress':
        ctx.progress(Number.NaN);
        ctx.progress(2, 'over one');
        ctx.progress(0.5, 'backwards');
        return 'ok';
      default:
        return undefined;
    }
  },
});

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({
    tasks: [flaky, patient, hanging, faults],
    config: { retryBaseMs: 100, retryMaxMs: 1000 },
  });
  token = await t.token('alice');
});
after(() => t.stop());

async function events(id: string) {
  return (await t.api(token, 'GET', `/api/tasks/${id}/events`)).body.events as any[];
}

describe('retries', () => {
  test('backoff doubles per attempt, capped, with at most 10% jitter', () => {
    for (const [attempt, base] of [
      [1, 100],
      [2, 200],
      [3, 400],
      [10, 1000],
    ]) {
      const d = retryDelay(attempt, 100, 1000);
      assert.ok(d >= base && d <= base * 1.1, `attempt ${attempt}: ${d}`);
    }
  });

  test('a failing attempt is retried with backoff until one succeeds', async () => {
    const task = await t.createTask(token, { type: 'flaky', succeed_on: 3 });
    const done = await t.waitForStatus(token, task.task_id, ['completed', 'failed'], 15_000);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempt, 3);
    assert.deepEqual(done.result, { attempt: 3 });
    const ev = await events(task.task_id);
    assert.deepEqual(
      ev.map((e) => e.event),
      ['created', 'started', 'retrying', 'started', 'retrying', 'started', 'completed'],
    );
    const retries = ev.filter((e) => e.event === 'retrying');
    const starts = ev.filter((e) => e.event === 'started');
    for (const [i, r] of retries.entries()) {
      assert.equal(r.data.error.message, `attempt ${i + 1} fails`);
      // The backoff runs from the failure, which comes after the attempt's start.
      const wait = Date.parse(r.data.retry_at) - Date.parse(starts[i].inserted_at);
      const expected = 100 * 2 ** i;
      assert.ok(wait >= expected, `retry ${i + 1} waits at least ${expected} ms, got ${wait}`);
      assert.ok(wait <= expected * 1.1 + 1000, `retry ${i + 1} waits about ${expected} ms, got ${wait}`);
    }
    // The next attempt does not start before retry_at.
    const secondStart = ev.filter((e) => e.event === 'started')[1];
    assert.ok(Date.parse(secondStart.inserted_at) >= Date.parse(retries[0].data.retry_at) - 5);
  });

  test('after max_attempts the task fails with the last error', async () => {
    const task = await t.createTask(token, { type: 'flaky', succeed_on: 99, max_attempts: 2 });
    const done = await t.waitForStatus(token, task.task_id, ['completed', 'failed'], 15_000);
    assert.equal(done.status, 'failed');
    assert.equal(done.attempt, 2);
    assert.deepEqual(done.error, { message: 'attempt 2 fails' });
    assert.deepEqual(
      (await events(task.task_id)).map((e) => e.event),
      ['created', 'started', 'retrying', 'started', 'failed'],
    );
  });

  test('subscribers see retrying with error and retry_at, in seq order', async () => {
    const task = await t.createTask(token, { type: 'flaky', succeed_on: 2 });
    const rec = recorder();
    const sub = await joinTask(t.service, 'alice', task.task_id, rec.sub);
    assert.ok(sub);
    await t.waitForStatus(token, task.task_id, ['completed'], 15_000);
    await waitFor(() => rec.events.some((e) => e.name === 'completed'), 'completed event');
    const retrying = rec.events.find((e) => e.name === 'retrying');
    assert.ok(retrying, JSON.stringify(rec.events));
    assert.equal(retrying.payload.error.message, 'attempt 1 fails');
    assert.ok(!Number.isNaN(Date.parse(retrying.payload.retry_at)));
    const seqs = rec.events.map((e) => e.payload.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    );
    assert.equal(new Set(seqs).size, seqs.length);
    sub.leave();
  });
});

describe('cancel and timeout', () => {
  test('cancelling a running task fires its signal and ends the attempt cancelled, not failed', async () => {
    cancelSeen = false;
    const task = await t.createTask(token, { type: 'patient' });
    await t.waitForStatus(token, task.task_id, ['running']);
    await waitFor(() => t.server.registry.get(task.task_id)?.state.progress === 0.1, 'first progress');
    const res = await t.api(token, 'POST', `/api/tasks/${task.task_id}/cancel`);
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'cancelled');
    assert.equal(res.body.attempt, 1);
    assert.equal(cancelSeen, true, 'the handler saw its signal abort');
    const stored = await t.waitForStatus(token, task.task_id, ['cancelled']);
    assert.equal(stored.result, null);
    const names = (await events(task.task_id)).map((e) => e.event);
    assert.deepEqual(names.slice(-1), ['cancelled']);
    assert.ok(!names.includes('failed') && !names.includes('retrying'));
    const again = await t.api(token, 'POST', `/api/tasks/${task.task_id}/cancel`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'conflict');
  });

  test('an attempt running past its type timeout is aborted and fails (retried while attempts remain)', async () => {
    const task = await t.createTask(token, { type: 'hanging' });
    const done = await t.waitForStatus(token, task.task_id, ['failed'], 10_000);
    assert.equal(done.attempt, 2);
    assert.match(done.error.message, /timed out after 200 ms/);
    assert.deepEqual(
      (await events(task.task_id)).map((e) => e.event),
      ['created', 'started', 'retrying', 'started', 'failed'],
    );
  });
});

describe('handler faults stay inside their task', () => {
  for (const [kind, message] of [
    ['sync-throw', 'sync boom'],
    ['non-error', 'non-Error thrown: {"weird":true}'],
    ['string', 'a plain string'],
  ]) {
    test(`a ${kind} fails the attempt with a readable error`, async () => {
      const task = await t.createTask(token, { type: 'faults', kind });
      const done = await t.waitForStatus(token, task.task_id, ['failed']);
      assert.deepEqual(done.error, { message });
    });
  }

  test('progress is clamped to 0..1 and never moves backwards within an attempt', async () => {
    const task = await t.createTask(token, { type: 'faults', kind: 'bad-progress' });
    const rec = recorder();
    await joinTask(t.service, 'alice', task.task_id, rec.sub);
    const done = await t.waitForStatus(token, task.task_id, ['completed']);
    assert.equal(done.progress, 1);
    await waitFor(() => rec.events.some((e) => e.name === 'completed'), 'completed event');
    const progress = rec.events.filter((e) => e.name === 'progress').map((e) => e.payload.progress);
    for (const p of progress) assert.ok(p >= 0 && p <= 1);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i] >= progress[i - 1]);
  });

  test('the server keeps serving other tasks', async () => {
    const task = await t.createTask(token, { steps: 2, interval_ms: 1 });
    assert.equal((await t.waitForStatus(token, task.task_id, ['completed'])).status, 'completed');
  });
});
