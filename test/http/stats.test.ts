// GET /api/stats (api.md): counts by status and type, throughput per bucket by outcome, run-time
// p50/p95 per type, queue, open sockets and nodes, over `?window=`; own tasks, or everyone's with
// `?all=true` (admin). And that it stays fast and index-backed with 100,000 tasks.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { Socket } from 'phoenix';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

let t: TestServer;
let alice: string;
let bob: string;
let root: string;

before(async () => {
  t = await startTestServer({ heartbeatIntervalMs: 200 });
  alice = await t.token('alice');
  bob = await t.token('bob');
  root = await t.server.tokens.mint('root', 3600, { admin: true });
});
after(() => t.stop());

const sum = (b: any[], k: string) => b.reduce((n, x) => n + x[k], 0);

test("the figures of the caller's own tasks, and of everyone's for an admin", async () => {
  const done = await Promise.all([1, 2, 3].map(() => t.createTask(alice, { steps: 2, interval_ms: 30 })));
  const failed = await t.createTask(alice, { steps: 2, interval_ms: 0, fail_at_step: 1, max_attempts: 1 });
  const long = await t.createTask(alice, { steps: 100, interval_ms: 100 });
  const other = await t.createTask(bob, { steps: 1, interval_ms: 0 });
  for (const d of done) await t.waitForStatus(alice, d.task_id, ['completed']);
  await t.waitForStatus(alice, failed.task_id, ['failed']);
  await t.waitForStatus(bob, other.task_id, ['completed']);
  await t.waitForStatus(alice, long.task_id, ['running']);

  // An open socket, reported by this node's heartbeat too.
  const socket = new Socket(t.wsUrl, { params: { token: alice } });
  socket.connect();
  try {
    await waitFor(() => socket.isConnected(), 'socket open');
    const own = await t.api(alice, 'GET', '/api/stats');
    assert.equal(own.status, 200);
    const s = own.body;
    assert.equal(s.scope, 'own');
    assert.equal(s.window, '1h');
    assert.equal(s.window_seconds, 3600);
    assert.deepEqual(s.counts, { queued: 0, running: 1, completed: 3, failed: 1, cancelled: 0 });
    assert.equal(s.types.length, 1);
    assert.equal(s.types[0].type, 'demo');
    assert.deepEqual(s.types[0].counts, s.counts);
    assert.ok(s.types[0].p50_ms >= 30 && s.types[0].p95_ms >= s.types[0].p50_ms, JSON.stringify(s.types[0]));
    assert.equal(s.throughput.bucket_seconds, 60);
    assert.equal(s.throughput.buckets.length, 60);
    assert.equal(sum(s.throughput.buckets, 'completed'), 3);
    assert.equal(sum(s.throughput.buckets, 'failed'), 1);
    assert.deepEqual(s.queue, { ready: 0, scheduled: 0, oldest_wait_seconds: 0 });
    assert.equal(s.sockets, 1);
    assert.equal(s.nodes.length, 1);
    assert.equal(s.nodes[0].id, t.server.nodeId);
    assert.equal(s.nodes[0].alive, true);
    assert.equal(s.nodes[0].running, 1);
    assert.ok(s.nodes[0].types.includes('demo'));
    assert.ok(s.nodes[0].concurrency > 0);

    // Other nodes' sockets come from their heartbeat: this node's row says 1 too.
    await waitFor(async () => {
      const { rows } = await t.server.pool.query('select sockets from taskwire.nodes where id = $1', [
        t.server.nodeId,
      ]);
      return rows[0]?.sockets === 1;
    }, 'the heartbeat reports the socket');

    const all = (await t.api(root, 'GET', '/api/stats?all=true')).body;
    assert.equal(all.scope, 'all');
    assert.equal(all.counts.completed, 4, "bob's task counted too");
    const admin = (await t.api(root, 'GET', '/api/stats')).body;
    assert.equal(admin.counts.completed, 0, 'without all=true an admin sees its own');
  } finally {
    socket.disconnect();
    await t.api(alice, 'POST', `/api/tasks/${long.task_id}/cancel`);
  }
});

test('?window= picks the window and the bucket size; a bad one is 422', async () => {
  const day = (await t.api(alice, 'GET', '/api/stats?window=24h')).body;
  assert.equal(day.window_seconds, 86_400);
  assert.equal(day.throughput.bucket_seconds, 900);
  assert.equal(day.throughput.buckets.length, 96);
  for (const bad of ['0h', '1y', '32d', 'abc', '-1h']) {
    const res = await t.api(alice, 'GET', `/api/stats?window=${encodeURIComponent(bad)}`);
    assert.equal(res.status, 422, bad);
    assert.equal(res.body.error.details[0].field, 'window');
  }
  assert.equal((await t.api(alice, 'GET', '/api/stats?all=maybe')).status, 422);
  assert.equal((await t.api('', 'GET', '/api/stats')).status, 401);
});

test('with 100,000 tasks the figures take milliseconds, through the indexes', async () => {
  // Its own database and a node that runs no jobs (TASKWIRE_CONCURRENCY=0): the rows below are
  // inserted as they are, and nothing moves them.
  const big = await startTestServer({ concurrency: 0 });
  const root = await big.server.tokens.mint('root', 3600, { admin: true });
  const db = new pg.Client({ connectionString: big.db.url });
  await db.connect();
  try {
    // 100,000 finished tasks over the last two hours (four types, three outcomes, 50 owners),
    // and 2,000 queued for tomorrow.
    await db.query(`
      insert into taskwire.tasks (id, owner, type, status, input, max_attempts, attempt, progress,
                                  inserted_at, started_at, finished_at)
      select gen_random_uuid(), 'user' || (i % 50), 'type' || (i % 4),
             (array['completed', 'completed', 'completed', 'failed', 'cancelled'])[1 + i % 5], '{}', 3, 1, 1,
             now() - make_interval(secs => i * 0.072 + 5), now() - make_interval(secs => i * 0.072 + 2),
             now() - make_interval(secs => i * 0.072)
        from generate_series(1, 100000) i;
      insert into taskwire.tasks (id, owner, type, status, input, max_attempts, inserted_at, scheduled_at)
      select gen_random_uuid(), 'user' || (i % 50), 'type' || (i % 4), 'queued', '{}', 3, now() - make_interval(secs => i),
             now() + interval '1 day'
        from generate_series(1, 2000) i;`);
    await db.query('vacuum analyze taskwire.tasks');
    const timed = async (path: string, token: string) => {
      await big.api(token, 'GET', path); // warm
      const started = performance.now();
      const res = await big.api(token, 'GET', path);
      return { ms: performance.now() - started, body: res.body };
    };
    const all = await timed('/api/stats?all=true', root);
    // The last hour holds exactly half of the 100,000 (one every 72 ms over 2 h).
    const finished = all.body.counts.completed + all.body.counts.failed + all.body.counts.cancelled;
    assert.ok(Math.abs(finished - 50_000) <= 500, `finished in the hour: ${finished}`);
    assert.equal(all.body.counts.queued, 2000);
    const generated = all.body.types;
    assert.equal(generated.length, 4);
    assert.ok(Math.abs(generated[0].p50_ms - 2000) < 5, `p50 ${generated[0].p50_ms}`);
    const own = await big.server.tokens.mint('user7', 60);
    const one = await timed('/api/stats', own);
    assert.ok(
      Math.abs(one.body.counts.completed - 1000) <= 20,
      `user7 completed: ${one.body.counts.completed}`,
    );
    assert.equal(one.body.counts.queued, 40);
    assert.deepEqual(
      [one.body.queue.ready, one.body.queue.scheduled],
      [0, 40],
      'delayed tasks are scheduled',
    );
    const week = await timed('/api/stats?all=true&window=7d', root);
    assert.equal(week.body.counts.completed, 60_000);
    console.log(
      `stats with 102,000 tasks: all 1h ${all.ms.toFixed(0)} ms, one owner 1h ${one.ms.toFixed(0)} ms, all 7d ${week.ms.toFixed(0)} ms`,
    );
    assert.ok(all.ms < 2000 && one.ms < 500 && week.ms < 3000, 'bounded');

    // The plans: index scans, never a sequential scan of the tasks table.
    const plan = async (sql: string, params: unknown[]) =>
      (await db.query(`explain ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
    const finishedPlan = await plan(
      `select type, status, started_at, finished_at from taskwire.tasks
        where finished_at is not null and finished_at >= now() - make_interval(secs => $1::float8)
          and status in ('completed', 'failed', 'cancelled') and owner = $2`,
      [3600, 'user7'],
    );
    assert.match(finishedPlan, /tasks_owner_finished_idx/);
    const inFlightPlan = await plan(
      `select type, status, count(*) from taskwire.tasks where status in ('queued', 'running') group by type, status`,
      [],
    );
    assert.doesNotMatch(inFlightPlan, /Seq Scan on tasks/, inFlightPlan);
  } finally {
    await db.end();
    await big.stop();
  }
});
