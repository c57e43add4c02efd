// Reading tasks: GET /api/tasks/:id (owner only, no probing), GET /api/tasks (newest first,
// filters, limit, keyset cursor pagination, isolation between users) and
// GET /api/tasks/:id/events (the audit trail, oldest first).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { assertError, assertTaskShape, assertValidation, nothingWritten } from './support.ts';

const echo = defineTask<{ say?: string }>({ name: 'echo', run: (ctx) => ({ said: ctx.input.say ?? null }) });
const QUICK = { steps: 1, interval_ms: 0 };
const UNKNOWN_ID = '01890000-0000-7000-8000-000000000000';

let t: TestServer;
let alice: string;
let bob: string;

before(async () => {
  t = await startTestServer({ tasks: [echo] });
  alice = await t.token('alice');
  bob = await t.token('bob');
});

after(async () => {
  await t?.stop();
});

describe('GET /api/tasks/:id', () => {
  let task: any;

  before(async () => {
    task = await t.createTask(alice, QUICK);
    await t.waitForStatus(alice, task.task_id, ['completed']);
  });

  test('200 with the task for its owner, in the Task shape, with the final state', async () => {
    const res = await t.api(alice, 'GET', `/api/tasks/${task.task_id}`);
    assert.equal(res.status, 200);
    assertTaskShape(res.body);
    assert.equal(res.body.task_id, task.task_id);
    assert.equal(res.body.status, 'completed');
    assert.equal(res.body.progress, 1);
    assert.deepEqual(res.body.result, { steps: 1 });
    assert.equal(res.body.error, null);
    assert.equal(res.body.attempt, 1);
    assert.ok(res.body.seq > 0);
  });

  test('an upper-case spelling of the id finds the same task', async () => {
    const res = await t.api(alice, 'GET', `/api/tasks/${task.task_id.toUpperCase()}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.task_id, task.task_id);
  });

  test("another user's task is 404 not_found, with a body identical to an unknown id's (no probing)", async () => {
    const foreign = await t.api(bob, 'GET', `/api/tasks/${task.task_id}`);
    const unknown = await t.api(bob, 'GET', `/api/tasks/${UNKNOWN_ID}`);
    assertError(foreign, 404, 'not_found');
    assertError(unknown, 404, 'not_found');
    assert.deepEqual(foreign.body, unknown.body);
    assert.doesNotMatch(JSON.stringify(foreign.body), new RegExp(task.task_id));
  });

  test('an unknown id is 404 not_found', async () => {
    assertError(await t.api(alice, 'GET', `/api/tasks/${UNKNOWN_ID}`), 404, 'not_found');
  });

  for (const id of ['not-a-uuid', '123', `${UNKNOWN_ID}x`, "1' or '1'='1"]) {
    test(`a non-UUID id (${id}) is 404 not_found`, async () => {
      const res = await nothingWritten(t.server.pool, () =>
        t.api(alice, 'GET', `/api/tasks/${encodeURIComponent(id)}`),
      );
      assertError(res, 404, 'not_found');
    });
  }
});

describe('GET /api/tasks', () => {
  /** pager's 25 tasks, oldest first. */
  const created: string[] = [];

  before(async () => {
    const pager = await t.token('pager');
    for (let i = 0; i < 25; i++) created.push((await t.createTask(pager, { ...QUICK, n: i })).task_id);
  });

  async function page(token: string, query: string) {
    const res = await t.api(token, 'GET', `/api/tasks${query}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body).sort(), ['next_cursor', 'tasks']);
    return res.body as { tasks: any[]; next_cursor: string | null };
  }

  test('lists the caller’s tasks newest first, in the Task shape', async () => {
    const { tasks, next_cursor } = await page(await t.token('pager'), '?limit=100');
    assert.equal(next_cursor, null);
    assert.deepEqual(
      tasks.map((x) => x.task_id),
      [...created].reverse(),
    );
    for (const task of tasks) assertTaskShape(task);
    for (let i = 1; i < tasks.length; i++) assert.ok(tasks[i - 1].inserted_at >= tasks[i].inserted_at);
  });

  test('a user with no tasks gets an empty list and no cursor', async () => {
    assert.deepEqual(await page(await t.token('nobody'), ''), { tasks: [], next_cursor: null });
  });

  test('cursor pagination walks 25 tasks with limit 10 in 3 pages, no duplicates, no gaps, null cursor last', async () => {
    const pager = await t.token('pager');
    const pages: any[][] = [];
    let cursor: string | null = null;
    do {
      const query: string = `?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const body = await page(pager, query);
      pages.push(body.tasks);
      cursor = body.next_cursor;
      assert.ok(pages.length <= 3, 'more than 3 pages');
    } while (cursor);
    assert.deepEqual(
      pages.map((p) => p.length),
      [10, 10, 5],
    );
    assert.deepEqual(
      pages.flat().map((x) => x.task_id),
      [...created].reverse(),
    );
  });

  test('a page that ends exactly at the last task has next_cursor null or leads to an empty page', async () => {
    const pager = await t.token('pager');
    const first = await page(pager, '?limit=20');
    assert.equal(first.tasks.length, 20);
    assert.ok(first.next_cursor);
    const second = await page(pager, `?limit=5&cursor=${encodeURIComponent(first.next_cursor)}`);
    assert.equal(second.tasks.length, 5);
    if (second.next_cursor) {
      assert.deepEqual(await page(pager, `?cursor=${encodeURIComponent(second.next_cursor)}`), {
        tasks: [],
        next_cursor: null,
      });
    }
  });

  test('without ?limit a page is the default size (20) with a cursor to the rest', async () => {
    const body = await page(await t.token('pager'), '');
    assert.equal(body.tasks.length, 20);
    assert.equal(typeof body.next_cursor, 'string');
  });

  test('limit 1 and limit 100 (the maximum) are accepted', async () => {
    const pager = await t.token('pager');
    const one = await page(pager, '?limit=1');
    assert.deepEqual(
      one.tasks.map((x) => x.task_id),
      [created[24]],
    );
    assert.ok(one.next_cursor);
    assert.equal((await page(pager, '?limit=100')).tasks.length, 25);
  });

  for (const limit of ['0', '101', 'abc', '2.5', '-1', '']) {
    test(`?limit=${limit} is 422 validation_failed naming limit`, async () => {
      const res = await nothingWritten(t.server.pool, () => t.api(alice, 'GET', `/api/tasks?limit=${limit}`));
      assertValidation(res, 'limit');
    });
  }

  for (const [label, cursor] of [
    ['garbage', 'not-a-cursor'],
    ['base64 of a non-array', Buffer.from('{"a":1}').toString('base64url')],
    ['a bad date', Buffer.from(JSON.stringify(['yesterday', UNKNOWN_ID])).toString('base64url')],
    [
      'a non-UUID id',
      Buffer.from(JSON.stringify([new Date().toISOString(), "x' or 1=1"])).toString('base64url'),
    ],
  ] as const) {
    test(`a forged cursor (${label}) is 422 validation_failed naming cursor`, async () => {
      const res = await nothingWritten(t.server.pool, () =>
        t.api(alice, 'GET', `/api/tasks?cursor=${encodeURIComponent(cursor)}`),
      );
      assertValidation(res, 'cursor');
    });
  }

  test('?status= and ?type= filter, alone and together', async () => {
    const filt = await t.token('filters');
    const d1 = await t.createTask(filt, QUICK);
    const d2 = await t.createTask(filt, QUICK);
    const e1 = await t.createTask(filt, { type: 'echo', say: 'hi' });
    const slow = await t.createTask(filt, { steps: 1, interval_ms: 60_000 });
    for (const x of [d1, d2, e1]) await t.waitForStatus(filt, x.task_id, ['completed']);
    assert.equal((await t.api(filt, 'POST', `/api/tasks/${slow.task_id}/cancel`)).status, 202);

    const ids = async (query: string) => (await page(filt, query)).tasks.map((x) => x.task_id);
    assert.deepEqual(await ids('?status=completed'), [e1.task_id, d2.task_id, d1.task_id]);
    assert.deepEqual(await ids('?status=cancelled'), [slow.task_id]);
    assert.deepEqual(await ids('?status=queued'), []);
    assert.deepEqual(await ids('?type=echo'), [e1.task_id]);
    assert.deepEqual(await ids('?type=demo'), [slow.task_id, d2.task_id, d1.task_id]);
    assert.deepEqual(await ids('?type=demo&status=completed'), [d2.task_id, d1.task_id]);
    assert.deepEqual(await ids('?type=nope'), []);
    // Filters and the cursor compose.
    const first = await page(filt, '?status=completed&limit=2');
    assert.equal(first.tasks.length, 2);
    const rest = await page(
      filt,
      `?status=completed&limit=2&cursor=${encodeURIComponent(first.next_cursor!)}`,
    );
    assert.deepEqual(
      rest.tasks.map((x) => x.task_id),
      [d1.task_id],
    );
    assert.equal(rest.next_cursor, null);
  });

  test('an unknown ?status= is 422 naming status', async () => {
    assertValidation(await t.api(alice, 'GET', '/api/tasks?status=done'), 'status');
  });

  async function walk(token: string, limit: number): Promise<string[]> {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 200; pages++) {
      const query: string = `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const body = await page(token, query);
      seen.push(...body.tasks.map((x) => x.task_id));
      cursor = body.next_cursor;
      if (!cursor) return seen;
    }
    throw new Error('pagination did not end');
  }

  // Regression: the cursor once carried inserted_at to the millisecond while rows are stored to
  // the microsecond, so a task created in the same millisecond as a page's last one was skipped.
  test('cursor pagination has no gaps when tasks share a millisecond (timestamps microseconds apart)', async () => {
    const token = await t.token('same-ms');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await t.createTask(token, QUICK)).task_id);
    for (const id of ids) await t.waitForStatus(token, id, ['completed']);
    await waitFor(() => ids.every((id) => !t.server.registry.get(id)), 'the actors to leave memory');
    // What concurrent creates produce: three arrivals within one millisecond, oldest first.
    for (const [i, id] of ids.entries()) {
      await t.server.pool.query('update taskwire.tasks set inserted_at = $2 where id = $1', [
        id,
        `2026-01-01T00:00:00.123${200 + 200 * i}Z`,
      ]);
    }
    assert.deepEqual(await walk(token, 1), [...ids].reverse());
  });

  test('cursor pagination has no gaps after 30 concurrent creates (limit 1)', async () => {
    const token = await t.token('burst');
    const created = await Promise.all(Array.from({ length: 30 }, () => t.createTask(token, QUICK)));
    const seen = await walk(token, 1);
    assert.equal(new Set(seen).size, seen.length, 'duplicates');
    assert.deepEqual(new Set(seen), new Set(created.map((x) => x.task_id)));
  });

  test("another user's tasks never appear, not even through their cursor", async () => {
    const pager = await t.token('pager');
    const first = await page(pager, '?limit=10');
    const mine = new Set(created);
    const other = await page(bob, '?limit=100');
    assert.ok(other.tasks.every((x) => !mine.has(x.task_id)));
    const withTheirCursor = await page(bob, `?limit=100&cursor=${encodeURIComponent(first.next_cursor!)}`);
    assert.ok(withTheirCursor.tasks.every((x) => !mine.has(x.task_id)));
    for (const task of [...other.tasks, ...withTheirCursor.tasks]) {
      assert.equal((await t.api(bob, 'GET', `/api/tasks/${task.task_id}`)).status, 200);
    }
  });
});

describe('GET /api/tasks/:id/events', () => {
  function assertTrail(events: any[], names: string[]): void {
    assert.deepEqual(
      events.map((e) => e.event),
      names,
    );
    for (let i = 1; i < events.length; i++) {
      assert.ok(events[i].seq > events[i - 1].seq, 'seq strictly increasing, oldest first');
      assert.ok(events[i].inserted_at >= events[i - 1].inserted_at);
    }
    assert.equal(events[0].seq, 0);
    assert.equal(events[0].attempt, 0);
  }

  test('a completed task: oldest first, created … completed (with the result), last seq = the task’s seq', async () => {
    const task = await t.createTask(alice, QUICK);
    const done = await t.waitForStatus(alice, task.task_id, ['completed']);
    const res = await t.api(alice, 'GET', `/api/tasks/${task.task_id}/events`);
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body), ['events']);
    const { events } = res.body;
    assertTrail(events, ['created', 'started', 'completed']);
    assert.deepEqual(events.at(-1).data.result, { steps: 1 });
    assert.equal(events.at(-1).attempt, 1);
    assert.equal(events.at(-1).seq, done.seq);
    for (const e of events) {
      for (const key of ['event', 'seq', 'attempt', 'data', 'inserted_at']) assert.ok(key in e, key);
    }
  });

  test('a task that fails after a retry: created, started, retrying (with retry_at), started, failed', async () => {
    const task = await t.createTask(alice, { ...QUICK, fail_at_step: 1, max_attempts: 2 });
    const failed = await t.waitForStatus(alice, task.task_id, ['failed']);
    assert.equal(failed.attempt, 2);
    assert.match(failed.error.message, /demo failed at step 1/);
    const { events } = (await t.api(alice, 'GET', `/api/tasks/${task.task_id}/events`)).body;
    assertTrail(events, ['created', 'started', 'retrying', 'started', 'failed']);
    assert.ok(!Number.isNaN(Date.parse(events[2].data.retry_at)));
    assert.match(events.at(-1).data.error.message, /demo failed at step 1/);
  });

  test("another user's task is 404 not_found, identical to an unknown id's", async () => {
    const task = await t.createTask(alice, QUICK);
    const foreign = await t.api(bob, 'GET', `/api/tasks/${task.task_id}/events`);
    const unknown = await t.api(bob, 'GET', `/api/tasks/${UNKNOWN_ID}/events`);
    assertError(foreign, 404, 'not_found');
    assertError(unknown, 404, 'not_found');
    assert.deepEqual(foreign.body, unknown.body);
  });

  test('a non-UUID id is 404 not_found', async () => {
    assertError(await t.api(alice, 'GET', '/api/tasks/nope/events'), 404, 'not_found');
  });
});
