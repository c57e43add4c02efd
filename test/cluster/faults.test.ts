// Faults across real processes: kill -9 of the node running a task while clients follow it from
// the other nodes (rescued; they keep receiving without rejoining, up to the end of the rescued
// attempt; progress never goes backwards within an attempt); a node paused with SIGSTOP (the others' local delivery is not slowed, and its
// own followers are told to rejoin rather than left stale); the message engine stopped and
// started (local subscribers served, remote ones told, /readyz degraded, delivery resumes).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startNatsServer } from '../bus/engines.ts';
import { BUSES, type Followed, follow, startNodes } from '../helpers/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { post, type ServerProcess, testToken } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const dbs: TestDatabase[] = [];
const procs: ServerProcess[] = [];
const followers: Followed[] = [];
after(async () => {
  for (const f of followers) f.close();
  for (const p of procs) if (p.child.exitCode === null) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await Promise.all(dbs.map((d) => d.drop()));
});

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  dbs.push(db);
  return db;
}

async function tracked<T extends Followed>(f: Promise<T>): Promise<T> {
  const followed = await f;
  followers.push(followed);
  return followed;
}

/** Progress never goes backwards within one attempt, and seq only rises. */
function assertMonotonic(f: Followed, taskId: string): void {
  const events = f.events.filter((e) => e.payload.task_id === taskId);
  for (let i = 1; i < events.length; i++) {
    const [prev, cur] = [events[i - 1].payload, events[i].payload];
    assert.ok(cur.seq > prev.seq, `seq rises: ${prev.seq} then ${cur.seq}`);
    if (cur.attempt === prev.attempt && cur.status === 'running' && prev.status === 'running')
      assert.ok(cur.progress >= prev.progress, `progress within attempt ${cur.attempt}`);
  }
}

describe('node faults', { concurrency: false }, () => {
  for (const bus of [BUSES[0], BUSES[1]]) {
    test(`kill -9 of the running node (${bus}): rescued elsewhere, followers elsewhere never rejoin, to its end`, async () => {
      const db = await database();
      const alice = await testToken('alice');
      const [a, b] = await startNodes(db.url, bus, [
        { id: `kill-${bus}-a`, worker: false },
        { id: `kill-${bus}-b`, worker: true },
      ]);
      procs.push(a, b);
      // 100 s: still running on b once c is up, however slowly c starts on a loaded machine; the
      // rescued attempt is cancelled once it is seen, not waited for.
      const created = await post(a.url, alice, '/api/tasks', { steps: 1000, interval_ms: 100 });
      const id = created.body.task_id;
      const onA = await tracked(follow(a.url, alice, `task:${id}`));
      await onA.until('progress', (p) => p.progress >= 0.01);
      const [c] = await startNodes(db.url, bus, [{ id: `kill-${bus}-c`, worker: true }]);
      procs.push(c);
      const onC = await tracked(follow(c.url, alice, `task:${id}`));
      await onC.until('progress', (p) => p.attempt === 1);
      b.kill('SIGKILL');
      await b.exited;
      const killedAt = Date.now();
      for (const f of [onA, onC]) await f.until('progress', (p) => p.attempt === 2, 30_000);
      const cancelled = await post(a.url, alice, `/api/tasks/${id}/cancel`, {});
      assert.equal(cancelled.body.status, 'cancelled', 'the cancel reached the rescuing node');
      for (const f of [onA, onC]) {
        const done = await f.until('cancelled');
        assert.equal(done.attempt, 2, 'the rescued attempt was the one running');
        assert.equal(f.replies.length, 1, 'no rejoin');
        assert.deepEqual(f.errors, [], 'no phx_error');
        assertMonotonic(f, id);
        const restarted = f.events.find((e) => e.event === 'started' && e.payload.attempt === 2);
        assert.ok(restarted, 'the rescue was announced');
      }
      const rescued = onA.events.find((e) => e.event === 'started' && e.payload.attempt === 2)!;
      console.log(
        `# ${bus}: the rescue reached a follower on another node ${rescued.at - killedAt} ms after the kill`,
      );
      assert.ok(rescued.at - killedAt < 15_000);
    });
  }

  test('SIGSTOP of a node for 5 s: the others deliver on time; its followers are told to rejoin', async () => {
    const db = await database();
    const alice = await testToken('alice');
    const [a, b] = await startNodes(db.url, 'postgres', [
      { id: 'stop-a', worker: true },
      { id: 'stop-b', worker: false },
    ]);
    procs.push(a, b);
    const created = await post(a.url, alice, '/api/tasks', { steps: 300, interval_ms: 50 });
    const id = created.body.task_id;
    const onA = await tracked(follow(a.url, alice, `task:${id}`));
    const onB = await tracked(follow(b.url, alice, `task:${id}`));
    await onB.until('progress');
    b.kill('SIGSTOP');
    const stoppedAt = Date.now();
    await waitFor(() => Date.now() - stoppedAt >= 5000, 'five seconds of pause', 6000, 100);
    b.kill('SIGCONT');
    const during = onA.events.filter((e) => e.at >= stoppedAt && e.at <= stoppedAt + 5000).map((e) => e.at);
    let worst = 0;
    for (let i = 1; i < during.length; i++) worst = Math.max(worst, during[i] - during[i - 1]);
    console.log(
      `# during the pause: ${during.length} events on A, worst gap ${worst} ms (steps every 50 ms)`,
    );
    assert.ok(during.length >= 50, `A kept delivering: ${during.length} events in 5 s`);
    assert.ok(worst < 1000, `no stall on A: worst gap ${worst} ms`);
    // B was dropped as silent and missed events: its follower is told (phx_error) and rejoins.
    await waitFor(
      () => onB.errors.length > 0 && onB.replies.length > 1,
      'B’s follower told to rejoin, and rejoined',
    );
    const before = onB.events.length;
    await waitFor(() => onB.events.length > before, 'B delivers again after its rejoin');
  });

  test('the engine (NATS) stopped and started: local delivery goes on, remote followers are told, /readyz says degraded, delivery resumes', async () => {
    const nats = await startNatsServer();
    try {
      const db = await database();
      const alice = await testToken('alice');
      const [a, b] = await startNodes(
        db.url,
        'nats',
        [
          { id: 'out-a', worker: true },
          { id: 'out-b', worker: false },
        ],
        { NATS_URL: nats.url },
      );
      procs.push(a, b);
      const created = await post(a.url, alice, '/api/tasks', { steps: 400, interval_ms: 50 });
      const id = created.body.task_id;
      const onA = await tracked(follow(a.url, alice, `task:${id}`));
      const onB = await tracked(follow(b.url, alice, `task:${id}`));
      await onB.until('progress');
      await nats.kill();
      const downAt = Date.now();
      await waitFor(() => onB.errors.some((e) => 'phx_error' in e), 'B’s follower told (phx_error)', 10_000);
      const ready = await (await fetch(`${b.url}/readyz`)).json();
      assert.deepEqual(ready, { status: 'degraded', degraded: ['bus'] });
      await waitFor(
        () => onA.events.filter((e) => e.at > downAt + 1000).length >= 10,
        'A’s local follower served during the outage',
      );
      assert.deepEqual(onA.errors, [], 'a task running on A keeps its local followers');
      await nats.restart();
      const upAt = Date.now();
      await waitFor(
        () => onB.events.some((e) => e.at > upAt && e.event === 'progress'),
        'cross-node delivery resumed, with no restart',
        20_000,
      );
      const readyAgain = await (await fetch(`${b.url}/readyz`)).json();
      assert.deepEqual(readyAgain, { status: 'ok' });
      console.log(
        `# NATS back: B delivering again ${onB.events.find((e) => e.at > upAt)!.at - upAt} ms later`,
      );
    } finally {
      await nats.dispose();
    }
  });
});
