// POST /api/tasks: the created task's shape and defaults, input validation, body parsing errors
// (malformed, not an object, too large, not JSON), and nothing half-written after any of them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { assertError, assertTaskShape, assertValidation, nothingWritten, rowCounts } from './support.ts';

const BODY_LIMIT = 1024;

let t: TestServer;
let alice: string;

before(async () => {
  t = await startTestServer({ bodyLimitBytes: BODY_LIMIT });
  alice = await t.token('alice');
});

after(async () => {
  await t?.stop();
});

/** Sends a raw body with the given content type (the harness' api() sends JSON). */
async function raw(body: string | undefined, contentType?: string) {
  return t.api(alice, 'POST', '/api/tasks', body, contentType ? { 'content-type': contentType } : {});
}

describe('POST /api/tasks creates a task', () => {
  test('201 with every field of the Task shape, a UUID v7 id, queued, attempt 0, seq 0', async () => {
    const res = await t.api(alice, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 });
    assert.equal(res.status, 201);
    assertTaskShape(res.body);
    assert.equal(res.body.type, 'demo');
    assert.equal(res.body.status, 'queued');
    assert.equal(res.body.progress, 0);
    assert.equal(res.body.message, null);
    assert.deepEqual(res.body.input, { steps: 1, interval_ms: 0 });
    assert.equal(res.body.result, null);
    assert.equal(res.body.error, null);
    assert.equal(res.body.attempt, 0);
    assert.equal(res.body.seq, 0);
    assert.equal(res.body.inserted_at, res.body.updated_at);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    await t.waitForStatus(alice, res.body.task_id, ['completed']);
  });

  test('max_attempts defaults to 3', async () => {
    const res = await t.api(alice, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 });
    assert.equal(res.status, 201);
    assert.equal(res.body.max_attempts, 3);
  });

  test('the seed client body {"prompt":"test"} works unchanged: a demo task with that input', async () => {
    const res = await t.api(alice, 'POST', '/api/tasks', { prompt: 'test' });
    assert.equal(res.status, 201);
    assert.equal(res.body.type, 'demo');
    assert.deepEqual(res.body.input, { prompt: 'test' });
    // It runs the demo defaults (5 x 2 s): cancel it rather than keep the worker busy.
    assert.equal((await t.api(alice, 'POST', `/api/tasks/${res.body.task_id}/cancel`)).status, 202);
  });

  test('input is every top-level field except type and max_attempts', async () => {
    const res = await t.api(alice, 'POST', '/api/tasks', {
      type: 'demo',
      max_attempts: 7,
      steps: 1,
      interval_ms: 0,
      message: 'hi',
      prompt: 'x',
      nested: { a: [1, 2] },
    });
    assert.equal(res.status, 201);
    assert.equal(res.body.type, 'demo');
    assert.equal(res.body.max_attempts, 7);
    assert.deepEqual(res.body.input, {
      steps: 1,
      interval_ms: 0,
      message: 'hi',
      prompt: 'x',
      nested: { a: [1, 2] },
    });
  });

  test('max_attempts accepts the bounds 1 and 25', async () => {
    for (const max_attempts of [1, 25]) {
      const res = await t.api(alice, 'POST', '/api/tasks', { max_attempts, steps: 1, interval_ms: 0 });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.max_attempts, max_attempts);
    }
  });

  test('the created task is what GET returns', async () => {
    const created = await t.createTask(alice, { steps: 1, interval_ms: 0, prompt: 'same' });
    const got = await t.api(alice, 'GET', `/api/tasks/${created.task_id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.task_id, created.task_id);
    assert.deepEqual(got.body.input, created.input);
  });
});

describe('POST /api/tasks rejects bad input with 422 validation_failed, writing nothing', () => {
  for (const [label, value] of [
    ['0', 0],
    ['26', 26],
    ['the string "3"', '3'],
    ['2.5', 2.5],
    ['null', null],
  ] as const) {
    test(`max_attempts ${label} is 422 naming max_attempts`, async () => {
      const res = await nothingWritten(t.server.pool, () =>
        t.api(alice, 'POST', '/api/tasks', { max_attempts: value, steps: 1, interval_ms: 0 }),
      );
      assertValidation(res, 'max_attempts');
    });
  }

  test('an unknown type is 422 validation_failed naming the field', async () => {
    const res = await nothingWritten(t.server.pool, () =>
      t.api(alice, 'POST', '/api/tasks', { type: 'no-such-type' }),
    );
    assertValidation(res, 'type');
  });

  test('a type that is not a string is 422 naming type', async () => {
    const res = await nothingWritten(t.server.pool, () => t.api(alice, 'POST', '/api/tasks', { type: 5 }));
    assertValidation(res, 'type');
  });

  for (const [field, value] of [
    ['steps', 0],
    ['steps', 100_001],
    ['steps', '5'],
    ['steps', 1.5],
    ['interval_ms', -1],
    ['interval_ms', 600_001],
    ['fail_at_step', 0],
    ['message', 42],
  ] as const) {
    test(`demo input ${field} ${JSON.stringify(value)} is 422 with details naming ${field}`, async () => {
      const res = await nothingWritten(t.server.pool, () =>
        t.api(alice, 'POST', '/api/tasks', { steps: 1, interval_ms: 0, [field]: value }),
      );
      assertValidation(res, field);
    });
  }

  test('several bad fields are all named', async () => {
    const res = await nothingWritten(t.server.pool, () =>
      t.api(alice, 'POST', '/api/tasks', { steps: 0, interval_ms: -1 }),
    );
    assertValidation(res, 'steps');
    assertValidation(res, 'interval_ms');
  });

  test('an Idempotency-Key longer than 255 characters is 422 naming it', async () => {
    const res = await nothingWritten(t.server.pool, () =>
      t.api(
        alice,
        'POST',
        '/api/tasks',
        { steps: 1, interval_ms: 0 },
        { 'idempotency-key': 'k'.repeat(256) },
      ),
    );
    assertValidation(res, 'Idempotency-Key');
  });
});

describe('POST /api/tasks rejects bodies it cannot read, writing nothing', () => {
  test('malformed JSON is 400 bad_request', async () => {
    const res = await nothingWritten(t.server.pool, () => raw('{"steps": 1,', 'application/json'));
    assertError(res, 400, 'bad_request');
  });

  test('an empty body declared as JSON is 400 bad_request', async () => {
    const res = await nothingWritten(t.server.pool, () => raw('', 'application/json'));
    assertError(res, 400, 'bad_request');
  });

  // Well-formed JSON of the wrong type: api.md says the body is "a JSON object", and 400 is for
  // malformed JSON, so a valid non-object is a wrong type: 422 naming the body.
  for (const [label, body] of [
    ['an array', '[{"steps": 1}]'],
    ['a string', '"test"'],
    ['a number', '42'],
    ['null', 'null'],
  ] as const) {
    test(`JSON that is ${label}, not an object, is 422 validation_failed naming the body`, async () => {
      const res = await nothingWritten(t.server.pool, () => raw(body, 'application/json'));
      assertValidation(res, 'body');
    });
  }

  test('a POST without a body is 422 naming the body', async () => {
    const res = await nothingWritten(t.server.pool, () => raw(undefined));
    assertValidation(res, 'body');
  });

  test('a body over the configured limit is 413 payload_too_large', async () => {
    const body = JSON.stringify({ steps: 1, interval_ms: 0, pad: 'x'.repeat(BODY_LIMIT) });
    const res = await nothingWritten(t.server.pool, () => raw(body, 'application/json'));
    assertError(res, 413, 'payload_too_large');
  });

  test('a body just under the limit is accepted', async () => {
    const body = JSON.stringify({ steps: 1, interval_ms: 0, pad: 'x'.repeat(BODY_LIMIT - 100) });
    assert.ok(Buffer.byteLength(body) <= BODY_LIMIT);
    const res = await raw(body, 'application/json');
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });

  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
    test(`a ${contentType} body is 415 unsupported_media_type (send JSON)`, async () => {
      const res = await nothingWritten(t.server.pool, () =>
        raw('{"steps": 1, "interval_ms": 0}', contentType),
      );
      const error = assertError(res, 415, 'unsupported_media_type');
      assert.match(error.message, /application\/json/);
    });
  }

  test('application/json with a charset parameter is accepted', async () => {
    const res = await raw('{"steps": 1, "interval_ms": 0}', 'application/json; charset=utf-8');
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });
});

describe('after all of the above', () => {
  test('the server keeps serving: a good POST works and the task completes', async () => {
    const before = await rowCounts(t.server.pool);
    const task = await t.createTask(alice, { steps: 2, interval_ms: 0 });
    const done = await t.waitForStatus(alice, task.task_id, ['completed']);
    assert.deepEqual(done.result, { steps: 2 });
    assert.equal(done.progress, 1);
    assert.equal((await rowCounts(t.server.pool)).tasks, before.tasks + 1);
  });
});
