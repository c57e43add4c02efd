// Priorities and delayed tasks (api.md "POST /api/tasks", "Fair scheduling"): a higher priority is
// claimed first; a task with run_at or delay_ms is queued with scheduled_at, says it waits for
// `scheduled`, never starts before it, can be cancelled before it; a run_at in the past runs at
// once. Bad priority, run_at and delay_ms are 422 naming the field, and write nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defineTask, sleep } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { assertError, assertTaskShape, assertValidation, nothingWritten, quiesce } from '../http/support.ts';

/** Handler start times by task id; `gate` holds the only worker until it is opened. */
const started = new Map<string, number>();
let openGate: () => void = () => {};
const gated = defineTask({
  name: 'gated',
  run: (ctx) =>
    new Promise((resolve) => {
      started.set(ctx.taskId, Date.now());
      openGate = () => resolve(null);
      ctx.signal.addEventListener('abort', () => resolve(null), { once: true });
    }),
});
const quick = defineTask({
  name: 'quick',
  async run(ctx) {
    started.set(ctx.taskId, Date.now());
    await sleep(5, ctx.signal);
    return null;
  },
});

const MAX_DELAY_MS = 60_000;
let t: TestServer;
let alice: string;
before(async () => {
  t = await startTestServer({
    config: { concurrency: 1, maxDelayMs: MAX_DELAY_MS, pollIntervalMs: 50 },
    tasks: [gated, quick],
  });
  alice = await t.token('alice');
});
after(() => t.stop());

describe('priority', () => {
  test('a higher priority is claimed first; equal priorities in order of arrival', async () => {
    const blocker = await t.createTask(alice, { type: 'gated' });
    await t.waitForStatus(alice, blocker.task_id, ['running']);
    const order = [0, -5, 50, 0, 100, -100, 50];
    const ids: string[] = [];
    for (const priority of order) {
      const task = await t.createTask(alice, { type: 'quick', priority });
      assertTaskShape(task);
      assert.equal(task.priority, priority);
      ids.push(task.task_id);
    }
    const read = await t.api(alice, 'GET', `/api/tasks/${ids[4]}`);
    assert.equal(read.body.priority, 100);
    openGate();
    await waitFor(() => ids.every((id) => started.has(id)), 'all started', 10_000);
    const byStart = [...ids].sort((a, b) => started.get(a)! - started.get(b)!);
    const expected = [4, 2, 6, 0, 3, 1, 5].map((i) => ids[i]);
    assert.deepEqual(
      byStart.map((id) => order[ids.indexOf(id)]),
      expected.map((id) => order[ids.indexOf(id)]),
      'started by priority, then arrival',
    );
    assert.deepEqual(byStart, expected);
  });
});

describe('delayed tasks', () => {
  test('run_at: queued with scheduled_at, waits as `scheduled`, never starts before it', async () => {
    const runAt = new Date(Date.now() + 1500);
    const res = await t.api(alice, 'POST', '/api/tasks', {
      type: 'quick',
      run_at: runAt.toISOString(),
      n: 1,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assertTaskShape(res.body);
    assert.equal(res.body.status, 'queued');
    assert.equal(res.body.scheduled_at, runAt.toISOString());
    assert.deepEqual(res.body.input, { n: 1 }, 'run_at is an option, not input');
    const read = await t.api(alice, 'GET', `/api/tasks/${res.body.task_id}`);
    assert.equal(read.headers.get('taskwire-wait'), 'scheduled');
    await t.waitForStatus(alice, res.body.task_id, ['completed'], 10_000);
    const at = started.get(res.body.task_id)!;
    assert.ok(at >= runAt.getTime(), `started ${runAt.getTime() - at} ms early`);
    assert.ok(at - runAt.getTime() < 1500, `started ${at - runAt.getTime()} ms after run_at`);
    const done = await t.api(alice, 'GET', `/api/tasks/${res.body.task_id}`);
    assert.equal(done.headers.get('taskwire-wait'), null, 'only a queued task says why it waits');
  });

  test('delay_ms: scheduled_at is now + delay; it never starts before', async () => {
    const before = Date.now();
    const res = await t.api(alice, 'POST', '/api/tasks', { type: 'quick', delay_ms: 800 });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const scheduled = Date.parse(res.body.scheduled_at);
    assert.ok(scheduled >= before + 800 && scheduled <= Date.now() + 800, res.body.scheduled_at);
    await t.waitForStatus(alice, res.body.task_id, ['completed'], 10_000);
    assert.ok(started.get(res.body.task_id)! >= scheduled, 'not before scheduled_at');
  });

  test('a delayed task can be cancelled before it starts, and never runs', async () => {
    const res = await t.api(alice, 'POST', '/api/tasks', { type: 'quick', delay_ms: 700 });
    const cancel = await t.api(alice, 'POST', `/api/tasks/${res.body.task_id}/cancel`);
    assert.equal(cancel.status, 202);
    assert.equal(cancel.body.status, 'cancelled');
    await new Promise((r) => setTimeout(r, 1000)); // past its start time: nothing may run it
    assert.equal(started.has(res.body.task_id), false);
    assert.equal((await t.api(alice, 'GET', `/api/tasks/${res.body.task_id}`)).body.status, 'cancelled');
  });

  test('a run_at in the past runs at once', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const res = await t.api(alice, 'POST', '/api/tasks', { type: 'quick', run_at: past });
    assert.equal(res.status, 201);
    const createdAt = Date.now();
    await t.waitForStatus(alice, res.body.task_id, ['completed'], 5000);
    assert.ok(started.get(res.body.task_id)! - createdAt < 1000);
  });
});

describe('bad scheduling options are 422 naming the field, and write nothing', () => {
  before(() => quiesce(t.server.pool));
  const far = () => new Date(Date.now() + MAX_DELAY_MS + 60_000).toISOString();
  const cases: [string, () => Record<string, unknown>, string][] = [
    ['priority 101', () => ({ priority: 101 }), 'priority'],
    ['priority -101', () => ({ priority: -101 }), 'priority'],
    ['priority 1.5', () => ({ priority: 1.5 }), 'priority'],
    ['priority "high"', () => ({ priority: 'high' }), 'priority'],
    ['run_at that is not a time', () => ({ run_at: 'tomorrow' }), 'run_at'],
    ['run_at without a zone', () => ({ run_at: '2030-01-01T00:00:00' }), 'run_at'],
    ['run_at past the configured bound', () => ({ run_at: far() }), 'run_at'],
    ['run_at a number', () => ({ run_at: 12345 }), 'run_at'],
    ['delay_ms -1', () => ({ delay_ms: -1 }), 'delay_ms'],
    ['delay_ms past the configured bound', () => ({ delay_ms: MAX_DELAY_MS + 1 }), 'delay_ms'],
    ['delay_ms past 31 days', () => ({ delay_ms: 2_678_400_001 }), 'delay_ms'],
    ['both run_at and delay_ms', () => ({ run_at: new Date().toISOString(), delay_ms: 10 }), 'delay_ms'],
  ];
  for (const [name, body, field] of cases) {
    test(name, async () => {
      const res = await nothingWritten(t.server.pool, () =>
        t.api(alice, 'POST', '/api/tasks', { type: 'quick', ...body() }),
      );
      assertValidation(res, field);
    });
  }
  test('both run_at and delay_ms names both', async () => {
    const res = await t.api(alice, 'POST', '/api/tasks', {
      type: 'quick',
      run_at: new Date().toISOString(),
      delay_ms: 10,
    });
    const error = assertError(res, 422, 'validation_failed');
    assert.deepEqual(error.details.map((d: { field: string }) => d.field).sort(), ['delay_ms', 'run_at']);
  });
});

describe('retry backoff', () => {
  test('a failed attempt’s next one waits for its retry time even while other wake-ups come', async () => {
    const r = await startTestServer({
      config: { concurrency: 4, retryBaseMs: 1500, retryMaxMs: 1500 },
      tasks: [
        defineTask({
          name: 'once-failing',
          run(ctx) {
            started.set(`${ctx.taskId}:${ctx.attempt}`, Date.now());
            if (ctx.attempt === 1) throw new Error('first attempt fails');
            return null;
          },
        }),
        quick,
      ],
    });
    try {
      const token = await r.token('alice');
      const task = await r.createTask(token, { type: 'once-failing' });
      await waitFor(() => started.has(`${task.task_id}:1`), 'the first attempt');
      // Other tasks' wake-ups keep coming while the failed one waits for its backoff.
      for (let i = 0; i < 20; i++) {
        await r.createTask(token, { type: 'quick' });
        await new Promise((res) => setTimeout(res, 25));
      }
      await r.waitForStatus(token, task.task_id, ['completed'], 10_000);
      const gap = started.get(`${task.task_id}:2`)! - started.get(`${task.task_id}:1`)!;
      assert.ok(
        gap >= 1450,
        `the second attempt started ${gap} ms after the first, not before its retry time`,
      );
    } finally {
      await r.stop();
    }
  });
});
