// Two nodes in this test process on one database, joined by an in-process engine: the bus shows in
// /metrics (peers, events sent and received, lag) and /readyz, and a task's `node` names the node
// that runs it, on both nodes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { MemoryBroker, MemoryTransport } from '../../src/bus/transports/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { joinTask } from '../helpers/join.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

let db: TestDatabase;
let a: TestServer; // runs the jobs
let b: TestServer; // API and sockets only
const log = pino({ level: 'silent' });

before(async () => {
  db = await createTestDatabase();
  const broker = new MemoryBroker();
  const transport = () => new MemoryTransport({ broker, namespace: 'metrics', log });
  a = await startTestServer({
    db,
    busTransport: transport(),
    config: { nodeId: 'mem-a', busHeartbeatMs: 100 },
  });
  b = await startTestServer({
    db,
    busTransport: transport(),
    config: { nodeId: 'mem-b', concurrency: 0, busHeartbeatMs: 100 },
  });
});
after(async () => {
  await b?.stop();
  await a?.stop();
  await db.drop();
});

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

test('the bus in /metrics and /readyz; node names the running node everywhere', async () => {
  const token = await a.token('alice');
  const task = await b.createTask(token, { steps: 30, interval_ms: 20 });
  const rec = recorder();
  const joined = await joinTask(b.service, 'alice', task.task_id, rec.sub);
  assert.ok(joined);
  await waitFor(() => rec.events.some((e) => e.name === 'progress'), 'progress through the bus');
  const live = (await b.api(token, 'GET', `/api/tasks/${task.task_id}`)).body;
  assert.equal(live.node, 'mem-a');
  assert.equal(live.status, 'running');
  await waitFor(() => rec.events.some((e) => e.name === 'completed'), 'completed through the bus');
  const done = (await a.api(token, 'GET', `/api/tasks/${task.task_id}`)).body;
  assert.equal(done.node, null, 'no node once it stopped running');
  const onB = await (await fetch(`${b.url}/metrics`)).text();
  const onA = await (await fetch(`${a.url}/metrics`)).text();
  assert.equal(metric(onB, 'taskwire_bus_up'), 1);
  assert.equal(metric(onB, 'taskwire_bus_peers'), 1);
  // Every event b's follower got came over the bus (events before b's interest reached a did not).
  const got = rec.events.length;
  assert.ok(got >= 2, `b's follower got events: ${got}`);
  assert.ok(metric(onB, 'taskwire_bus_events_received_total') >= got, 'received, counted on b');
  assert.ok(metric(onA, 'taskwire_bus_events_published_total') >= got, 'published, counted on a');
  assert.ok(metric(onB, 'taskwire_bus_lag_seconds_count') >= got);
  assert.equal(metric(onB, 'taskwire_bus_messages_dropped_total'), 0);
  assert.deepEqual((await b.api('', 'GET', '/readyz')).body, { status: 'ok' });
  joined.leave();
});
