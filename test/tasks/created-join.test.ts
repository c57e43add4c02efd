// The join that follows a POST is answered from the row the create wrote, kept in memory while
// no other node could have changed it, instead of reading that row back: one statement per task
// fewer (issue 14). The tests prove both halves: no read where the memory is right, and a read (or
// the live state) wherever it could be stale: started, cancelled, finished, or another node seen.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { MemoryBroker, MemoryTransport } from '../../src/bus/transports/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { joinTask } from '../helpers/join.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

const log = pino({ level: 'silent' });
let db: TestDatabase;
let broker: MemoryBroker;
let a: TestServer;

/** Counts the task-row reads (`getTask`) of a server's pool from now on. */
function countRowReads(t: TestServer): { readonly n: number; stop(): void } {
  const pool = t.server.pool;
  const original = pool.query;
  const counter = {
    n: 0,
    stop() {
      pool.query = original;
    },
  };
  pool.query = function (this: unknown, ...args: unknown[]) {
    const config = args[0] as { name?: string } | undefined;
    if (config?.name === 'taskwire_get_task') counter.n += 1;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof pool.query;
  return counter;
}

function node(nodeId: string, concurrency?: number): Promise<TestServer> {
  return startTestServer({
    db,
    busTransport: new MemoryTransport({ broker, namespace: 'created-join', log }),
    config: { nodeId, busHeartbeatMs: 100, ...(concurrency === undefined ? {} : { concurrency }) },
  });
}

before(async () => {
  db = await createTestDatabase();
  broker = new MemoryBroker();
  a = await node('cj-a');
});
after(async () => {
  await a?.stop();
  await db?.drop();
});

test('a join after a POST on a node alone is answered without reading the row back', async () => {
  const token = await a.token('alice');
  const reads = countRowReads(a);
  try {
    const task = await a.createTask(token, { steps: 1, interval_ms: 0, delay_ms: 60_000 });
    const rec = recorder();
    const joined = await joinTask(a.service, 'alice', task.task_id, rec.sub);
    assert.ok(joined);
    assert.equal(joined.task.status, 'queued');
    assert.equal(joined.task.seq, task.seq);
    assert.deepEqual(joined.task, task, 'the reply is the task the POST answered');
    assert.equal(reads.n, 0, 'no row read for the join');
    // Another user still can't join it.
    assert.equal(await joinTask(a.service, 'mallory', task.task_id, recorder().sub), null);
    joined.leave();
  } finally {
    reads.stop();
  }
});

test('a cancel here ends what is remembered: the next join sees the cancel', async () => {
  const token = await a.token('alice');
  const task = await a.createTask(token, { steps: 1, interval_ms: 0, delay_ms: 60_000 });
  const cancel = await a.api(token, 'POST', `/api/tasks/${task.task_id}/cancel`);
  assert.equal(cancel.status, 202);
  const joined = await joinTask(a.service, 'alice', task.task_id, recorder().sub);
  assert.equal(joined?.task.status, 'cancelled');
  joined?.leave();
});

test('a task that started and finished here before the join is answered as it ended', async () => {
  const token = await a.token('alice');
  const task = await a.createTask(token, { steps: 1, interval_ms: 0 });
  await a.waitForStatus(token, task.task_id, ['completed']);
  const joined = await joinTask(a.service, 'alice', task.task_id, recorder().sub);
  assert.equal(joined?.task.status, 'completed');
  assert.equal(joined?.task.progress, 1);
  joined?.leave();
});

test('once another node has been seen, a task created before is read again, even after it left', async () => {
  const token = await a.token('alice');
  const before = await a.createTask(token, { steps: 1, interval_ms: 0, delay_ms: 60_000 });
  const b = await node('cj-b', 0);
  let reads = countRowReads(a);
  try {
    await waitFor(() => !a.server.pubsub.cluster?.alone, 'a to count b as a peer');
    // With a peer, a task created now is read too: the peer could claim or cancel it unseen.
    const during = await a.createTask(token, { steps: 1, interval_ms: 0, delay_ms: 60_000 });
    const j1 = await joinTask(a.service, 'alice', during.task_id, recorder().sub);
    assert.equal(j1?.task.status, 'queued');
    assert.equal(reads.n, 1, 'the row is read while a peer exists');
    j1?.leave();
    // b cancels the older task; a never hears of it (nobody wanted the topic).
    const cancel = await b.api(token, 'POST', `/api/tasks/${before.task_id}/cancel`);
    assert.equal(cancel.status, 202);
  } finally {
    reads.stop();
    await b.stop();
  }
  await waitFor(() => a.server.pubsub.cluster?.alone, 'a to be alone again');
  reads = countRowReads(a);
  try {
    const j2 = await joinTask(a.service, 'alice', before.task_id, recorder().sub);
    assert.equal(j2?.task.status, 'cancelled', 'not the queued row a remembered');
    assert.equal(reads.n, 1);
    j2?.leave();
  } finally {
    reads.stop();
  }
});
