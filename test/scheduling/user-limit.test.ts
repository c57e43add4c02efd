// TASKWIRE_USER_CONCURRENCY across processes: three real `taskwire start` processes on one
// database, each free to run 6 tasks, with a cap of 4 running tasks per user. The running count
// (the rows of running attempts, sampled continuously) never passes the cap, while another user's
// tasks run beside; a node killed with -9 while it holds the user's slots keeps them until its
// attempts are rescued (no over-run while they might still be alive), and every task completes once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { FAST_LIVENESS } from '../helpers/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { post, type ServerProcess, spawnServer, testToken } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const CAP = 4;
let db: TestDatabase;
let pool: pg.Pool;
let nodes: ServerProcess[] = [];

before(async () => {
  db = await createTestDatabase();
  pool = db.pool(3);
  nodes = await Promise.all(
    ['cap-a', 'cap-b', 'cap-c'].map((nodeId) =>
      spawnServer({
        databaseUrl: db.url,
        nodeId,
        env: {
          ...FAST_LIVENESS,
          TASKWIRE_USER_CONCURRENCY: String(CAP),
          TASKWIRE_CONCURRENCY: '6',
          TASKWIRE_BUS: 'postgres',
        },
      }),
    ),
  );
});
after(async () => {
  for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.kill('SIGKILL');
  await Promise.all(nodes.map((n) => n.exited));
  await db.drop(); // closes the pool first
});

interface Sample {
  at: number;
  running: Record<string, number>;
  /** alice's running rows held by the killed node (null: sampled before the kill). */
  onKilled: number | null;
}

test('a user never runs more than the cap across 3 processes, kill -9 included', async () => {
  const [alice, bob] = await Promise.all([testToken('alice'), testToken('bob')]);
  const submit = async (token: string, n: number, node: ServerProcess) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await post(node.url, token, '/api/tasks', { steps: 2, interval_ms: 500 });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(res.body.task_id);
    }
    return ids;
  };

  let killed: string | null = null;
  const samples: Sample[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const victimId = killed;
      const { rows } = await pool.query<{ owner: string; n: number; on_killed: number }>(
        `select owner, count(*)::int as n, count(*) filter (where node_id = $1)::int as on_killed
           from taskwire.tasks where status = 'running' group by owner`,
        [victimId ?? ''],
      );
      samples.push({
        at: Date.now(),
        running: Object.fromEntries(rows.map((r) => [r.owner, r.n])),
        onKilled: victimId === null ? null : (rows.find((r) => r.owner === 'alice')?.on_killed ?? 0),
      });
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  const aliceIds = (await Promise.all(nodes.map((n) => submit(alice, 14, n)))).flat();
  // Once alice is at her cap, bob's tasks still run.
  await waitFor(() => samples.at(-1)?.running.alice === CAP, 'alice at her cap', 15_000);
  const bobIds = await submit(bob, 3, nodes[1]);
  await waitFor(() => samples.some((s) => (s.running.bob ?? 0) > 0), 'bob running beside alice', 10_000);

  // Kill -9 a node while it runs some of alice's tasks (its slots stay taken until rescued).
  const { rows: held } = await pool.query<{ node_id: string; n: number }>(
    `select node_id, count(*)::int as n from taskwire.tasks where owner = 'alice' and status = 'running'
      group by node_id order by n desc limit 1`,
  );
  assert.ok(held[0], 'some node runs alice’s tasks');
  const victim = nodes.find((n) => n.nodeId === held[0].node_id)!;
  killed = victim.nodeId;
  const killedAt = Date.now();
  victim.kill('SIGKILL');
  await victim.exited;

  const all = [...aliceIds, ...bobIds];
  await waitFor(
    async () => {
      const { rows } = await pool.query<{ n: number }>(
        "select count(*)::int as n from taskwire.tasks where id = any($1) and status = 'completed'",
        [all],
      );
      return rows[0].n === all.length;
    },
    'every task completed',
    90_000,
    100,
  );
  sampling = false;
  await sampler;

  const maxAlice = Math.max(...samples.map((s) => s.running.alice ?? 0));
  console.log(
    `${samples.length} samples; alice's running count at most ${maxAlice} (cap ${CAP}); ` +
      `bob at most ${Math.max(...samples.map((s) => s.running.bob ?? 0))}`,
  );
  assert.equal(maxAlice, CAP, `alice's running count reached the cap and never passed it`);
  // Until the killed node's attempts were rescued, they kept their slots: alice's rows on the dead
  // node plus on the live ones never passed the cap, and the dead node's rows stayed until rescue.
  const afterKill = samples.filter((s) => s.onKilled !== null);
  assert.ok((afterKill[0]?.onKilled ?? 0) > 0, 'the killed node held alice’s slots');
  const rescuedAt = afterKill.find((s) => s.onKilled === 0)?.at;
  assert.ok(rescuedAt !== undefined, "the killed node's attempts were rescued");
  assert.ok(
    rescuedAt - killedAt >= 2000,
    `its slots stayed taken until the rescue (${rescuedAt - killedAt} ms)`,
  );
  const { rows: done } = await pool.query<{ task_id: string; n: number }>(
    `select task_id, count(*)::int as n from taskwire.task_events
      where task_id = any($1) and event = 'completed' group by task_id`,
    [all],
  );
  assert.equal(done.length, all.length);
  for (const d of done) assert.equal(d.n, 1, `task ${d.task_id} completed once`);
  const { rows: rescued } = await pool.query<{ n: number }>(
    'select count(*)::int as n from taskwire.tasks where id = any($1) and attempt > 1',
    [aliceIds],
  );
  assert.ok(rescued[0].n >= 1, 'some of alice’s tasks ran again after the kill');
});
