// Input PostgreSQL can't store (NUL, lone UTF-16 surrogates, JSON nested past MAX_JSON_DEPTH) is
// rejected with 422 validation_failed naming the field, never a 500, and nothing is written;
// surrogate pairs (emoji) are stored exactly as sent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findUnstorable, MAX_JSON_DEPTH } from '../../src/contract/storable.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { assertError, assertValidation, nothingWritten } from './support.ts';

let t: TestServer;
let alice: string;

before(async () => {
  t = await startTestServer();
  alice = await t.token('alice');
});
after(() => t?.stop());

/** POSTs a JSON text as written (escapes like \u0000 reach JSON.parse as they are). */
function post(json: string, headers: Record<string, string> = {}) {
  return t.api(alice, 'POST', '/api/tasks', json, headers);
}

describe('POST /api/tasks with strings PostgreSQL cannot store', () => {
  for (const [label, json, field] of [
    ['NUL in a top-level value', '{"steps":1,"interval_ms":0,"note":"cut \\u0000 here"}', 'note'],
    ['NUL in a nested value', '{"steps":1,"interval_ms":0,"a":{"b":"\\u0000"}}', 'a.b'],
    ['a lone high surrogate', '{"steps":1,"interval_ms":0,"a":{"b":"half \\ud800"}}', 'a.b'],
    ['a lone low surrogate in an array', '{"steps":1,"interval_ms":0,"list":["ok","\\udc00"]}', 'list.1'],
    ['a reversed pair', '{"steps":1,"interval_ms":0,"x":"\\ude00\\ud83d"}', 'x'],
    ['NUL in a top-level key', '{"steps":1,"interval_ms":0,"k\\u0000":1}', 'k\\u0000'],
    ['a lone surrogate in a nested key', '{"steps":1,"interval_ms":0,"a":{"\\ud800":1}}', 'a.\\ud800'],
    ['NUL in the type', '{"type":"demo\\u0000"}', 'type'],
    ['NUL in the demo message', '{"steps":1,"interval_ms":0,"message":"\\u0000"}', 'message'],
  ] as const) {
    test(`${label} is 422 validation_failed naming ${field}, writing nothing`, async () => {
      const res = await nothingWritten(t.server.pool, () => post(json));
      assertValidation(res, field);
      assert.equal(findUnstorable(res.body), undefined, 'the answer itself holds no unstorable character');
    });
  }

  test(`input nested deeper than ${MAX_JSON_DEPTH} levels is 422 naming its top-level field`, async () => {
    const depth = MAX_JSON_DEPTH + 10;
    const res = await nothingWritten(t.server.pool, () =>
      post(`{"steps":1,"interval_ms":0,"tree":${'['.repeat(depth)}${']'.repeat(depth)}}`),
    );
    assertValidation(res, 'tree');
  });

  test('input nested 100,000 levels (past what JSON.stringify takes) is 422, not 500', async () => {
    const depth = 100_000;
    const res = await post(`{"tree":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    assertValidation(res, 'tree');
  });

  test('surrogate pairs, U+FFFD and control characters other than NUL are stored as sent', async () => {
    const input = { steps: 1, interval_ms: 0, note: 'ok 😀 \uFFFD \u0001', '日本😀': ['é'] };
    const res = await post(JSON.stringify(input));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.input, input);
    const again = await t.api(alice, 'GET', `/api/tasks/${res.body.task_id}`);
    assert.deepEqual(again.body.input, input, 'what the database kept');
  });

  test('an Idempotency-Key with NUL is 422 naming it (the route check; HTTP parsing refuses it first)', async () => {
    const res = await t.server.app.inject({
      method: 'POST',
      url: '/api/tasks',
      headers: {
        authorization: `Bearer ${alice}`,
        'content-type': 'application/json',
        'idempotency-key': 'key\u0000x',
      },
      payload: '{"steps":1,"interval_ms":0}',
    });
    assertValidation({ status: res.statusCode, body: res.json() }, 'Idempotency-Key');
  });

  test('GET /api/tasks?type= with NUL is 422 naming type', async () => {
    assertValidation(await t.api(alice, 'GET', '/api/tasks?type=a%00b'), 'type');
  });

  test('a token whose sub PostgreSQL cannot store is refused as unauthorized', async () => {
    const bad = await t.server.tokens.mint('al\u0000ice', 600);
    assertError(await t.api(bad, 'GET', '/api/tasks'), 401, 'unauthorized');
  });
});
