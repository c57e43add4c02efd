// Authentication of every /api route: a missing, malformed or forged bearer token is 401
// unauthorized with api.md's error body, and writes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { startTestServer, TEST_SECRET, type TestServer } from '../helpers/server.ts';
import { assertError, nothingWritten } from './support.ts';

let t: TestServer;
let aliceTask: any;

const key = (secret: string) => new TextEncoder().encode(secret);
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

before(async () => {
  t = await startTestServer();
  aliceTask = await t.createTask(await t.token('alice'), { steps: 1, interval_ms: 0 });
  await t.waitForStatus(await t.token('alice'), aliceTask.task_id, ['completed']);
});

after(async () => {
  await t?.stop();
});

/** Every /api route, with a body where it takes one. */
function routes(): [string, string, unknown][] {
  const id = aliceTask.task_id;
  return [
    ['POST', '/api/tasks', { steps: 1, interval_ms: 0 }],
    ['GET', '/api/tasks', undefined],
    ['GET', `/api/tasks/${id}`, undefined],
    ['POST', `/api/tasks/${id}/cancel`, undefined],
    ['GET', `/api/tasks/${id}/events`, undefined],
  ];
}

async function assertRejected(headers: Record<string, string>): Promise<void> {
  for (const [method, path, body] of routes()) {
    const res = await nothingWritten(t.server.pool, () => t.api('', method, path, body, headers));
    assertError(res, 401, 'unauthorized');
  }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('authentication', () => {
  test('a valid HS256 token with sub (and no exp) is accepted on every route', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .sign(key(TEST_SECRET));
    for (const [method, path, body] of routes()) {
      const res = await t.api(token, method, path, body);
      // The cancel of a completed task is a 409: still authenticated.
      assert.ok(
        [200, 201, 409].includes(res.status),
        `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`,
      );
    }
  });

  test('a missing Authorization header is 401 unauthorized', async () => {
    await assertRejected({});
  });

  for (const [label, header] of [
    ['"Bearer" with no token', 'Bearer'],
    ['"Bearer " with an empty token', 'Bearer '],
    ['a Basic scheme', 'Basic YWxpY2U6c2VjcmV0'],
    ['a bare token without a scheme', 'eyJhbGciOiJIUzI1NiJ9.e30.x'],
    ['a token that is not a JWT', 'Bearer not-a-jwt'],
    ['a token with garbage segments', 'Bearer aaa.bbb.ccc'],
  ] as const) {
    test(`a malformed header (${label}) is 401 unauthorized`, async () => {
      await assertRejected({ authorization: header });
    });
  }

  test('a token signed with another secret is 401 unauthorized', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(now() + 600)
      .sign(key('another-secret-0123456789abcdef'));
    await assertRejected(bearer(token));
  });

  test('an alg none token is 401 unauthorized', async () => {
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'alice', exp: now() + 600 })}.`;
    await assertRejected(bearer(token));
  });

  test('an HS512 token signed with the right secret is 401 unauthorized (only HS256)', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS512' })
      .setSubject('alice')
      .setExpirationTime(now() + 600)
      .sign(key(TEST_SECRET));
    await assertRejected(bearer(token));
  });

  test('a token whose header is changed to another alg after signing is 401 unauthorized', async () => {
    const token = await t.token('alice');
    const [, payload, signature] = token.split('.');
    await assertRejected(bearer(`${b64url({ alg: 'HS384', typ: 'JWT' })}.${payload}.${signature}`));
  });

  test('a token whose payload is changed after signing (sub swapped) is 401 unauthorized', async () => {
    const [header, , signature] = (await t.token('mallory')).split('.');
    await assertRejected(bearer(`${header}.${b64url({ sub: 'alice', exp: now() + 600 })}.${signature}`));
  });

  test('an expired token is 401 unauthorized', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuedAt(now() - 600)
      .setExpirationTime(now() - 60)
      .sign(key(TEST_SECRET));
    const res = await t.api(token, 'GET', '/api/tasks');
    assert.match(assertError(res, 401, 'unauthorized').message, /expired/);
    await assertRejected(bearer(token));
  });

  test('a token without sub is 401 unauthorized', async () => {
    const token = await new SignJWT({ user: 'alice' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(now() + 600)
      .sign(key(TEST_SECRET));
    await assertRejected(bearer(token));
  });

  test('a token with an empty sub is 401 unauthorized', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('')
      .sign(key(TEST_SECRET));
    await assertRejected(bearer(token));
  });

  test('the health endpoints need no token', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      assert.equal((await t.api('', 'GET', path)).status, 200, path);
    }
  });

  test('the server keeps serving after the rejected requests: a good POST works', async () => {
    const task = await t.createTask(await t.token('alice'), { steps: 1, interval_ms: 0 });
    assert.equal(task.status, 'queued');
  });
});
