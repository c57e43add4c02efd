// The database goes away under a running server: every route that needs it answers 503
// `unavailable` within the configured bound (never a hang, never a 500 with a stack), /readyz
// says 503, nothing is half-written, and once the database is back the same process serves
// again without a restart.
//
// "Down" is simulated on the test's own database only (the machine's PostgreSQL is shared):
// ALLOW_CONNECTIONS false refuses new connections and pg_terminate_backend drops the live ones.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ADMIN_URL } from '../helpers/db.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { assertError, rowCounts } from './support.ts';

const DB_TIMEOUT_MS = 1000;
/** What "within ~dbTimeoutMs" allows: the bound plus scheduling slack. */
const ANSWER_WITHIN_MS = DB_TIMEOUT_MS + 1500;
const UNKNOWN_ID = '01890000-0000-7000-8000-000000000000';

let t: TestServer;
let admin: pg.Client;
let token: string;
let down = false;

async function setAllowConnections(allow: boolean): Promise<void> {
  await admin.query(`alter database ${t.db.name} allow_connections ${allow}`);
  if (!allow) {
    await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [
      t.db.name,
    ]);
  }
  down = !allow;
}

async function timed(method: string, path: string, body?: unknown, auth = token) {
  const started = Date.now();
  const res = await t.api(auth, method, path, body);
  return { ...res, ms: Date.now() - started };
}

before(async () => {
  t = await startTestServer({ dbTimeoutMs: DB_TIMEOUT_MS });
  token = await t.token('alice');
  admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
});

after(async () => {
  // Restore before stopping, so that the server's shutdown and the cleanup can connect.
  if (down) await setAllowConnections(true).catch(() => {});
  await admin?.end().catch(() => {});
  await t?.stop();
});

describe('database down', () => {
  let before: Awaited<ReturnType<typeof rowCounts>>;
  let existing: any;

  test('before the outage: a task is created and completes, /readyz is 200', async () => {
    existing = await t.createTask(token, { steps: 1, interval_ms: 0 });
    await t.waitForStatus(token, existing.task_id, ['completed']);
    assert.equal((await t.api('', 'GET', '/readyz')).status, 200);
    before = await waitFor(async () => {
      const counts = await rowCounts(t.server.pool);
      return counts.jobs === 0 ? counts : null;
    }, 'the queue to drain');
  });

  test('while down: POST, GET, list, events and cancel answer 503 unavailable within the bound', async () => {
    await setAllowConnections(false);
    const requests: [string, string, unknown?][] = [
      ['POST', '/api/tasks', { steps: 1, interval_ms: 0 }],
      ['GET', '/api/tasks'],
      ['GET', `/api/tasks/${UNKNOWN_ID}`],
      ['GET', `/api/tasks/${existing.task_id}/events`],
      ['POST', `/api/tasks/${UNKNOWN_ID}/cancel`],
      ['POST', '/api/tasks', { steps: 1, interval_ms: 0 }],
    ];
    for (const [method, path, body] of requests) {
      const res = await timed(method, path, body);
      assertError(res, 503, 'unavailable');
      assert.ok(res.ms < ANSWER_WITHIN_MS, `${method} ${path} took ${res.ms} ms`);
    }
    // Many at once: each still answers (the pool's wait for a connection is bounded too).
    const burst = await Promise.all(
      Array.from({ length: 12 }, () => timed('POST', '/api/tasks', { steps: 1, interval_ms: 0 })),
    );
    for (const res of burst) {
      assertError(res, 503, 'unavailable');
      assert.ok(res.ms < ANSWER_WITHIN_MS * 2, `a request in the burst took ${res.ms} ms`);
    }
  });

  test('while down: /readyz is 503 and /healthz still 200', async () => {
    const ready = await timed('GET', '/readyz', undefined, '');
    assert.equal(ready.status, 503);
    assert.ok(ready.ms < ANSWER_WITHIN_MS, `/readyz took ${ready.ms} ms`);
    assert.equal((await t.api('', 'GET', '/healthz')).status, 200);
  });

  test('while down: auth and validation errors still answer without the database', async () => {
    assertError(await t.api('', 'GET', '/api/tasks'), 401, 'unauthorized');
    assertError(await t.api(token, 'POST', '/api/tasks', { steps: 0 }), 422, 'validation_failed');
  });

  test('back up: the same process serves again without a restart, and nothing was half-written', async () => {
    await setAllowConnections(true);
    // The pool reconnects on demand: the first request after the outage may still race the
    // restore, so wait (bounded) for a success rather than assume one.
    const created = await waitFor(
      async () => {
        const res = await t.api(token, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 });
        return res.status === 201 ? res.body : null;
      },
      'a create to succeed after the outage',
      10_000,
      100,
    );
    const after = await rowCounts(t.server.pool);
    assert.equal(after.tasks, before.tasks + 1, 'only the task created after the outage was added');
    // The queue workers came back too: the new task runs to completion.
    await t.waitForStatus(token, created.task_id, ['completed'], 15_000);
    await waitFor(async () => (await t.api('', 'GET', '/readyz')).status === 200, '/readyz 200 again');
    const list = await t.api(token, 'GET', '/api/tasks');
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.tasks.map((x: any) => x.task_id),
      [created.task_id, existing.task_id],
    );
  });
});
