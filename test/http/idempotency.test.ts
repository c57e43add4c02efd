// Idempotency-Key (a repeated key from the same user returns the first task with 200, even under
// a burst of concurrent repeats) and the per-user create rate limit (429 rate_limited).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { assertError, nothingWritten } from './support.ts';

const BODY = { steps: 1, interval_ms: 0 };

describe('Idempotency-Key', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer();
  });

  after(async () => {
    await t?.stop();
  });

  async function listAll(token: string): Promise<any[]> {
    const res = await t.api(token, 'GET', '/api/tasks?limit=100');
    assert.equal(res.status, 200);
    return res.body.tasks;
  }

  async function rowsWithKey(owner: string, key: string): Promise<number> {
    const { rows } = await t.server.pool.query<{ n: number }>(
      'select count(*)::int as n from taskwire.tasks where owner = $1 and idempotency_key = $2',
      [owner, key],
    );
    return rows[0].n;
  }

  test('the same key from the same user is 200 with the same task_id, and only one task exists', async () => {
    const token = await t.token('idem-1');
    const first = await t.api(token, 'POST', '/api/tasks', BODY, { 'idempotency-key': 'key-1' });
    assert.equal(first.status, 201);
    await t.waitForStatus(token, first.body.task_id, ['completed']);
    const again = await t.api(token, 'POST', '/api/tasks', BODY, { 'idempotency-key': 'key-1' });
    assert.equal(again.status, 200);
    assert.equal(again.body.task_id, first.body.task_id);
    // The repeat answers with the task as it stands now, not a new one.
    assert.equal(again.body.status, 'completed');
    const tasks = await listAll(token);
    assert.deepEqual(
      tasks.map((x) => x.task_id),
      [first.body.task_id],
    );
    assert.equal(await rowsWithKey('idem-1', 'key-1'), 1);
  });

  test('a repeat with a different body still returns the first task', async () => {
    const token = await t.token('idem-2');
    const first = await t.api(
      token,
      'POST',
      '/api/tasks',
      { ...BODY, prompt: 'one' },
      { 'idempotency-key': 'k' },
    );
    const again = await t.api(
      token,
      'POST',
      '/api/tasks',
      { ...BODY, prompt: 'two' },
      { 'idempotency-key': 'k' },
    );
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.equal(again.body.task_id, first.body.task_id);
    assert.deepEqual(again.body.input, { ...BODY, prompt: 'one' });
    assert.equal((await listAll(token)).length, 1);
  });

  test('the same key from another user creates a separate task', async () => {
    const a = await t.token('idem-3a');
    const b = await t.token('idem-3b');
    const first = await t.api(a, 'POST', '/api/tasks', BODY, { 'idempotency-key': 'shared' });
    const other = await t.api(b, 'POST', '/api/tasks', BODY, { 'idempotency-key': 'shared' });
    assert.equal(first.status, 201);
    assert.equal(other.status, 201);
    assert.notEqual(other.body.task_id, first.body.task_id);
    assert.deepEqual(
      (await listAll(b)).map((x) => x.task_id),
      [other.body.task_id],
    );
    // Neither user can read the other's task through the shared key.
    assert.equal((await t.api(b, 'GET', `/api/tasks/${first.body.task_id}`)).status, 404);
  });

  test('different keys from the same user create different tasks', async () => {
    const token = await t.token('idem-4');
    const one = await t.api(token, 'POST', '/api/tasks', BODY, { 'idempotency-key': 'one' });
    const two = await t.api(token, 'POST', '/api/tasks', BODY, { 'idempotency-key': 'two' });
    assert.equal(one.status, 201);
    assert.equal(two.status, 201);
    assert.notEqual(one.body.task_id, two.body.task_id);
  });

  test('20 concurrent POSTs with the same key: exactly one 201, the rest 200 with the same id, one row, one job run', async () => {
    const token = await t.token('idem-burst');
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.api(token, 'POST', '/api/tasks', BODY, { 'idempotency-key': 'burst-key' }),
      ),
    );
    const statuses = results.map((r) => r.status).sort((a, b) => a - b);
    assert.deepEqual(statuses, [...Array(19).fill(200), 201]);
    const ids = new Set(results.map((r) => r.body.task_id));
    assert.equal(ids.size, 1);
    const [id] = ids;
    assert.equal(await rowsWithKey('idem-burst', 'burst-key'), 1);
    assert.deepEqual(
      (await listAll(token)).map((x) => x.task_id),
      [id],
    );
    const done = await t.waitForStatus(token, id, ['completed']);
    assert.equal(done.attempt, 1);
    const events = (await t.api(token, 'GET', `/api/tasks/${id}/events`)).body.events;
    assert.deepEqual(
      events.map((e: any) => e.event),
      ['created', 'started', 'completed'],
    );
  });

  test('without the header every POST creates a new task', async () => {
    const token = await t.token('idem-none');
    const one = await t.createTask(token, BODY);
    const two = await t.createTask(token, BODY);
    assert.notEqual(one.task_id, two.task_id);
  });
});

describe('rate limit', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer({ maxCreatesPerMinute: 3 });
  });

  after(async () => {
    await t?.stop();
  });

  test('the 4th create in a minute is 429 rate_limited with retry-after, writing nothing', async () => {
    const token = await t.token('busy');
    for (let i = 0; i < 3; i++) await t.createTask(token, BODY);
    const res = await nothingWritten(t.server.pool, () => t.api(token, 'POST', '/api/tasks', BODY));
    assertError(res, 429, 'rate_limited');
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
      `retry-after ${retryAfter}`,
    );
    // Still limited on the next try; reads are not limited.
    assertError(await t.api(token, 'POST', '/api/tasks', BODY), 429, 'rate_limited');
    assert.equal((await t.api(token, 'GET', '/api/tasks')).status, 200);
  });

  test('other users are unaffected by one user hitting the limit', async () => {
    const other = await t.token('calm');
    const res = await t.api(other, 'POST', '/api/tasks', BODY);
    assert.equal(res.status, 201);
  });
});
