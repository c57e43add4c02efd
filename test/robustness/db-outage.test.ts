// PostgreSQL goes away under load: the process stays up, /readyz is 503, writes answer 503
// quickly, live progress keeps flowing from memory, and when the database is back the task
// completes (its terminal write retried) with nothing lost and no restart.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '../../src/server/logger.ts';
import { defineTask } from '../../src/tasks/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { joinTask } from '../helpers/join.ts';
import { logSink } from '../helpers/log-sink.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

let step: () => void = () => {};
const stepwise = defineTask({
  name: 'stepwise',
  async run(ctx) {
    for (let i = 1; i <= 10; i++) {
      await new Promise<void>((resolve) => {
        step = resolve;
      });
      ctx.progress(i / 10, `step ${i}`);
    }
    return { steps: 10 };
  },
});

const logs = logSink();
let db: TestDatabase;
let proxy: TcpProxy;
let t: TestServer;
before(async () => {
  db = await createTestDatabase();
  const direct = new URL(db.url);
  proxy = await startTcpProxy(direct.hostname, Number(direct.port || 5432));
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  t = await startTestServer({
    db: { ...db, url: viaProxy.toString() },
    tasks: [stepwise],
    config: { dbTimeoutMs: 500 },
    log: createLogger({ logLevel: 'warn', logPretty: false }, logs.stream),
  });
});
after(async () => {
  proxy.restore();
  await t.stop();
  await proxy.close();
  await db.drop();
});

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = Date.now();
  const value = await fn();
  return [value, Date.now() - started];
}

test('a database outage: 503s, live progress from memory, and recovery with nothing lost', async () => {
  const token = await t.token('alice');
  const task = await t.createTask(token, { type: 'stepwise' });
  const rec = recorder();
  const sub = await joinTask(t.service, 'alice', task.task_id, rec.sub);
  assert.ok(sub);
  await waitFor(() => t.server.registry.get(task.task_id), 'the attempt to start');
  step();
  await waitFor(() => rec.events.some((e) => e.payload.progress === 0.1), 'step 1');

  proxy.cut();
  const [ready, readyMs] = await timed(() => t.api('', 'GET', '/readyz'));
  assert.equal(ready.status, 503);
  const [created, createMs] = await timed(() =>
    t.api(token, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 }),
  );
  assert.equal(created.status, 503, JSON.stringify(created.body));
  assert.equal(created.body.error.code, 'unavailable');
  assert.ok(
    createMs < 5000 && readyMs < 5000,
    `bounded answers: create ${createMs} ms, readyz ${readyMs} ms`,
  );

  // Live progress keeps flowing to subscribers from memory while the database is away.
  for (let i = 2; i <= 9; i++) {
    step();
    await waitFor(() => rec.events.some((e) => e.payload.progress === i / 10), `step ${i} during the outage`);
  }
  // GET of a live task answers from the actor, without the database.
  const live = await t.api(token, 'GET', `/api/tasks/${task.task_id}`);
  assert.equal(live.status, 200);
  assert.equal(live.body.progress, 0.9);
  step(); // the handler returns now; the terminal write must wait for the database
  await waitFor(
    () => logs.lines.some((l) => /retrying the attempt end/.test(l.msg)),
    'the terminal write to be tried and refused',
  );
  assert.ok(!rec.events.some((e) => e.name === 'completed'), 'no terminal event before it is durable');

  proxy.restore();
  await waitFor(
    () => rec.events.some((e) => e.name === 'completed'),
    'completion after the database came back',
    15_000,
  );
  const stored = await t.waitForStatus(token, task.task_id, ['completed'], 15_000);
  assert.deepEqual(stored.result, { steps: 10 });
  await waitFor(async () => (await t.api('', 'GET', '/readyz')).status === 200, 'ready again', 15_000, 100);
  const after = await t.createTask(token, { steps: 1, interval_ms: 0 });
  assert.equal((await t.waitForStatus(token, after.task_id, ['completed'], 15_000)).status, 'completed');
  const seqs = rec.events.map((e) => e.payload.seq);
  assert.deepEqual(
    seqs,
    [...new Set(seqs)].sort((a, b) => a - b),
    'every event once, in order',
  );
  sub.leave();
});
