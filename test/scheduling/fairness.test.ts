// Owners take turns (api.md "Fair scheduling"): user A queues 2,000 tasks of 200 ms on a server
// running 20 at a time, then user B queues 10. B's first task starts within 1 s and all of B's
// within 3 s, and A's throughput over the run stays within 10 % of A's throughput alone (runs with
// nobody to share with on the same server, just before and just after, averaged, so that a change
// in the machine's load over the run weighs on both sides). First come, first served (the queue
// before fair scheduling) starts B's first task only after A's backlog, about 20 s later.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineTask, sleep } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const TASK_MS = 200;
const WORKERS = 20;

/** When each task's handler started and ended, by task id. */
const runs = new Map<string, { user: string; start: number; end?: number }>();
const timed = defineTask<{ user: string }>({
  name: 'timed',
  async run(ctx) {
    const run = { user: ctx.input.user, start: Date.now() } as { user: string; start: number; end?: number };
    runs.set(ctx.taskId, run);
    await sleep(TASK_MS, ctx.signal);
    run.end = Date.now();
    return null;
  },
});

let t: TestServer;
before(async () => {
  t = await startTestServer({ config: { concurrency: WORKERS, dbPoolSize: 10 }, tasks: [timed] });
});
after(() => t.stop());

async function submit(user: string, n: number): Promise<string[]> {
  const created = await Promise.all(
    Array.from({ length: n }, () => t.service.create({ owner: user, type: 'timed', input: { user } })),
  );
  return created.map((c) => c.task.task_id);
}

function ended(ids: string[]): number {
  return ids.filter((id) => runs.get(id)?.end !== undefined).length;
}

/** Tasks per second of `ids`, from the first start to the last end. */
function throughput(ids: string[]): number {
  const rs = ids.map((id) => runs.get(id)!);
  const first = Math.min(...rs.map((r) => r.start));
  const last = Math.max(...rs.map((r) => r.end!));
  return (ids.length / (last - first)) * 1000;
}

test('a user with 10 tasks behind another user’s 2,000 starts within 1 s; A’s throughput holds', async () => {
  // A alone: the throughput of the unshared pool, before the shared run (and after it, below).
  const alone = await submit('alice', 400);
  await waitFor(() => ended(alone) === alone.length, 'the first run of A alone', 30_000, 20);
  const aloneBefore = throughput(alone);

  const backlog = await submit('alice', 2000);
  await waitFor(() => ended(backlog) >= 100, 'A under way', 30_000, 5);
  const submittedAt = Date.now();
  const bob = await submit('bob', 10);
  await waitFor(() => ended(bob) === bob.length, "B's tasks done", 30_000, 5);
  const bStarts = bob.map((id) => runs.get(id)!.start - submittedAt).sort((a, b) => a - b);
  const aPending = backlog.length - ended(backlog);
  await waitFor(() => ended(backlog) === backlog.length, "A's backlog done", 60_000, 20);
  const sharedRate = throughput(backlog);
  const again = await submit('alice', 400);
  await waitFor(() => ended(again) === again.length, 'the second run of A alone', 30_000, 20);
  const aloneRate = (aloneBefore + throughput(again)) / 2;

  console.log(
    `B started after ${bStarts.join(', ')} ms (A had ${aPending} left); A alone ${aloneBefore.toFixed(1)} ` +
      `and ${throughput(again).toFixed(1)}/s, ` +
      `A while shared ${sharedRate.toFixed(1)}/s (the pool's ideal: ${(WORKERS * 1000) / TASK_MS}/s)`,
  );
  assert.ok(aPending > 1000, `B came while A still had most of its backlog (${aPending} left)`);
  assert.ok(bStarts[0] <= 1000, `B's first task started ${bStarts[0]} ms after it was queued`);
  assert.ok(bStarts[9] <= 3000, `all of B's tasks started within 3 s (last: ${bStarts[9]} ms)`);
  assert.ok(
    sharedRate >= 0.9 * aloneRate,
    `A's throughput with B ${sharedRate.toFixed(1)}/s is within 10 % of A alone ${aloneRate.toFixed(1)}/s`,
  );
});
