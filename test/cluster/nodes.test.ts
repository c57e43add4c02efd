// Three real processes on one database behave as one server, over each bus (postgres, nats,
// redis): a task POSTed on A runs on B (the only node with workers), and followers on A, B and C
// (the official phoenix client) each get the state and then every later event in seq order, no gap,
// no duplicate; GET answers the live state on any node; a cancel on C ends the attempt on B; the
// user topic works across nodes and refuses another user.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BUSES, type Followed, follow, seqsOf, startNodes } from '../helpers/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { post, type ServerProcess, testToken } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

async function get(url: string, token: string, path: string): Promise<any> {
  const res = await fetch(`${url}${path}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() };
}

/** The follower saw the task from its join state on: each later event once, seq rising by one. */
function assertContiguous(f: Followed, taskId: string, name: string): void {
  const joined = f.replies[0].task?.seq ?? -1;
  const seqs = seqsOf(f, taskId);
  assert.ok(seqs.length > 0, `${name} got events`);
  assert.equal(seqs[0], joined + 1, `${name}: the first event follows its join state (${joined})`);
  for (let i = 1; i < seqs.length; i++)
    assert.equal(seqs[i], seqs[i - 1] + 1, `${name}: no gap, no duplicate`);
}

for (const bus of BUSES) {
  describe(`three nodes over the ${bus} bus`, { concurrency: false }, () => {
    let db: TestDatabase;
    let a: ServerProcess;
    let b: ServerProcess;
    let c: ServerProcess;
    let alice: string;
    const followers: Followed[] = [];

    before(async () => {
      db = await createTestDatabase();
      [a, b, c] = await startNodes(db.url, bus, [
        { id: `${bus}-a`, worker: false },
        { id: `${bus}-b`, worker: true },
        { id: `${bus}-c`, worker: false },
      ]);
      alice = await testToken('alice');
    });
    after(async () => {
      for (const f of followers) f.close();
      for (const p of [a, b, c]) p?.kill('SIGKILL');
      await Promise.all([a, b, c].map((p) => p?.exited));
      await db.drop();
    });

    test('POST on A, run on B, followed on A, B and C: every event, in order, everywhere', async () => {
      const onUser = await follow(c.url, alice, 'user:alice');
      followers.push(onUser);
      const created = await post(a.url, alice, '/api/tasks', { steps: 20, interval_ms: 40 });
      assert.equal(created.status, 201);
      const id = created.body.task_id;
      const fs = await Promise.all([a, b, c].map((p) => follow(p.url, alice, `task:${id}`)));
      followers.push(...fs);
      await Promise.all(fs.map((f) => f.until('completed')));
      for (const [i, f] of fs.entries()) {
        assertContiguous(f, id, ['A', 'B', 'C'][i]);
        assert.equal(f.events.at(-1)?.event, 'completed');
        assert.deepEqual(f.events.at(-1)?.payload.result, { steps: 20 });
        assert.deepEqual(f.errors, [], 'no error, no rejoin');
      }
      const started = fs.flatMap((f) => f.events).find((e) => e.event === 'started');
      const row = await get(a.url, alice, `/api/tasks/${id}/events`);
      const node = row.body.events.find((e: any) => e.event === 'started').data.node;
      assert.equal(node, `${bus}-b`, 'the job ran on B');
      if (started) assert.equal(started.payload.status, 'running');
      // The user topic on C: `created` (the whole task), then the task's events, each naming it.
      await onUser.until('completed', (p) => p.task_id === id);
      const mine = onUser.events.filter((e) => e.payload.task_id === id);
      assert.equal(mine[0].event, 'created');
      assert.equal(mine[0].payload.status, 'queued');
      assert.equal(mine[0].payload.input.steps, 20);
      const seqs = mine.map((e) => e.payload.seq);
      for (let i = 1; i < seqs.length; i++)
        assert.equal(seqs[i], seqs[i - 1] + 1, 'user topic: in seq order');
    });

    test('GET on any node answers the live state; a cancel on C ends the attempt running on B', async () => {
      const created = await post(a.url, alice, '/api/tasks', { steps: 200, interval_ms: 50 });
      const id = created.body.task_id;
      const onA = await follow(a.url, alice, `task:${id}`);
      followers.push(onA);
      await onA.until('progress', (p) => p.progress >= 0.05);
      for (const p of [a, c]) {
        const live = await get(p.url, alice, `/api/tasks/${id}`);
        assert.equal(live.body.status, 'running', `GET on ${p.nodeId}`);
        assert.equal(live.body.node, `${bus}-b`);
        assert.ok(live.body.progress >= 0.05, `live progress on ${p.nodeId}: ${live.body.progress}`);
      }
      const res = await post(c.url, alice, `/api/tasks/${id}/cancel`, {});
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'cancelled', 'the answer is the ended attempt, from B');
      const cancelled = await onA.until('cancelled');
      assert.equal(cancelled.attempt, 1);
      assert.ok(cancelled.progress < 1);
    });

    test('user:<sub> refuses another user, on any node', async () => {
      await assert.rejects(follow(a.url, alice, 'user:bob'), /unauthorized/);
      await assert.rejects(follow(c.url, alice, 'user:'), /unauthorized/);
    });

    test('a join racing the last events of tasks on a remote node always ends knowing the end', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const res = await post(a.url, alice, '/api/tasks', { steps: 3, interval_ms: 5 + (i % 4) * 5 });
        ids.push(res.body.task_id);
      }
      // Joins land before, during and after each task's last events.
      const fs = await Promise.all(
        ids.map(async (id, i) => {
          await new Promise((r) => setTimeout(r, (i % 6) * 8));
          return follow(i % 2 ? a.url : c.url, alice, `task:${id}`);
        }),
      );
      followers.push(...fs);
      await waitFor(
        () =>
          fs.every(
            (f) => f.replies[0].task.status === 'completed' || f.events.some((e) => e.event === 'completed'),
          ),
        'every follower knows its task completed',
      );
      for (const [i, f] of fs.entries()) {
        const seqs = seqsOf(f, ids[i]);
        const joined = f.replies[0].task.seq;
        assert.ok(
          seqs.every((s) => s > joined),
          'nothing at or below the joined state',
        );
        for (let k = 1; k < seqs.length; k++) assert.equal(seqs[k], seqs[k - 1] + 1);
      }
    });
  });
}
