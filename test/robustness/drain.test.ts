// Graceful drain: handlers get the deadline, then their signal fires; what did not finish goes
// back to the queue at once (not counted as an attempt) and runs to completion elsewhere.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { startTestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

// Runs until its signal fires on the first server; quick on the second.
let firstServer = true;
const resumable = defineTask({
  name: 'resumable',
  maxAttempts: 1,
  async run(ctx) {
    ctx.progress(0.5, 'half way');
    if (!firstServer) return { resumed_on_attempt: ctx.attempt };
    await new Promise((_resolve, reject) =>
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }),
    );
  },
});

let db: TestDatabase;

async function readState(id: string) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return await client.query(
      `select t.status, t.attempt, (select count(*)::int from graphile_worker._private_jobs j
         where j.key = t.id::text and j.run_at <= now() + interval '1 second') as ready_jobs
         from taskwire.tasks t where t.id = $1`,
      [id],
    );
  } finally {
    await client.end();
  }
}

before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

test('a drain releases an unfinished attempt at once, without spending an attempt', async () => {
  const a = await startTestServer({ db, tasks: [resumable], config: { shutdownTimeoutMs: 300 } });
  const token = await a.token('alice');
  const task = await a.createTask(token, { type: 'resumable' });
  await waitFor(() => a.server.registry.get(task.task_id)?.state.progress === 0.5, 'running on a');
  const stopping = Date.now();
  await a.stop();
  assert.ok(Date.now() - stopping < 3000, 'the drain ends soon after its deadline');

  // The release happened before the stop finished: queued again, attempt not counted, job ready now.
  const { rows } = await readState(task.task_id);
  assert.deepEqual(rows[0], { status: 'queued', attempt: 0, ready_jobs: 1 });

  firstServer = false;
  const probe = await startTestServer({ db, tasks: [resumable] });
  try {
    const done = await probe.waitForStatus(token, task.task_id, ['completed', 'failed'], 15_000);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.deepEqual(done.result, { resumed_on_attempt: 1 }, 'the interrupted attempt did not count');
    const all = (await probe.api(token, 'GET', `/api/tasks/${task.task_id}/events`)).body.events;
    const lifecycle = all.filter((e: any) => e.event !== 'progress'); // sampled checkpoints aside
    assert.deepEqual(
      lifecycle.map((e: any) => e.event),
      ['created', 'started', 'retrying', 'started', 'completed'],
    );
    assert.equal(lifecycle[2].data.released, true);
  } finally {
    await probe.stop();
  }
});

test('a drain refuses new sockets at once, keeps open ones fed, then closes them with 1012', async () => {
  const { default: WebSocket } = await import('ws');
  let finish: () => void = () => {};
  const finishing = defineTask({
    name: 'finishing',
    async run(ctx) {
      ctx.progress(0.5);
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      ctx.progress(1, 'done');
      return 'ok';
    },
  });
  const s = await startTestServer({ db, tasks: [finishing], config: { shutdownTimeoutMs: 5000 } });
  const token = await s.token('alice');
  const task = await s.createTask(token, { type: 'finishing' });
  await waitFor(() => s.server.registry.get(task.task_id)?.state.progress === 0.5, 'running');
  const url = `${s.wsUrl}/websocket?token=${token}&vsn=2.0.0`;
  const ws = new WebSocket(url);
  const frames: any[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify(['1', '1', `task:${task.task_id}`, 'phx_join', {}]));
  await waitFor(() => frames.some((f) => f[3] === 'phx_reply'), 'the join reply');

  const stopping = s.stop();
  const refused = await new Promise<number>((resolve) => {
    const late = new WebSocket(url);
    late.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    late.once('open', () => resolve(101));
    late.once('error', () => {});
  });
  assert.equal(refused, 503, 'a new socket is refused during the drain');
  finish();
  await waitFor(() => frames.some((f) => f[3] === 'completed'), 'the open socket still gets the end');
  assert.equal(await closed, 1012, 'then it is closed with 1012 (Phoenix clients reconnect)');
  await stopping;
});
