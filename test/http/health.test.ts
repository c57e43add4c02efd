// /healthz, /readyz and /metrics, and the error shape of an unknown route.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { assertError } from './support.ts';

let t: TestServer;

before(async () => {
  t = await startTestServer();
});

after(async () => {
  await t?.stop();
});

describe('health and metrics', () => {
  test('/healthz is 200', async () => {
    const res = await t.api('', 'GET', '/healthz');
    assert.equal(res.status, 200);
  });

  test('/readyz is 200 when the database is reachable and the workers run', async () => {
    const res = await t.api('', 'GET', '/readyz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('/metrics is 200 Prometheus text with taskwire_tasks_created_total counting creates by type', async () => {
    const token = await t.token('metrics');
    await t.createTask(token, { steps: 1, interval_ms: 0 });
    await t.createTask(token, { steps: 1, interval_ms: 0 });
    const res = await t.api('', 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = res.body as string;
    assert.equal(typeof text, 'string');
    assert.match(text, /^# HELP taskwire_tasks_created_total /m);
    assert.match(text, /^# TYPE taskwire_tasks_created_total counter$/m);
    assert.match(text, /^taskwire_tasks_created_total\{type="demo"\} 2$/m);
  });

  test('an unknown route is 404 not_found in the error shape', async () => {
    const res = await t.api('', 'GET', '/api/nope');
    assertError(res, 404, 'not_found');
  });
});
