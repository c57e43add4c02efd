// Two nodes in this test process on one database, joined by an in-process engine: the bus shows in
// /metrics (peers, events sent and received, lag) and /readyz, and a task's `node` names the node
// that runs it, on both nodes; a task's events reach a watcher in seq order even when the node
// that created it and the node that runs it publish them out of order.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import type { BusTransport, TransportHandlers } from '../../src/bus/index.ts';
import { MemoryBroker, MemoryTransport } from '../../src/bus/transports/index.ts';
import { follow } from '../helpers/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { joinTask } from '../helpers/join.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

/** A node's transport whose outgoing messages matching `hold` wait until release(). */
class HoldingTransport implements BusTransport {
  readonly #inner: BusTransport;
  readonly #held: Array<[string, string[]]> = [];
  hold: (message: string) => boolean = () => false;

  constructor(inner: BusTransport) {
    this.#inner = inner;
  }
  get kind() {
    return this.#inner.kind;
  }
  get connected() {
    return this.#inner.connected;
  }
  get heldCount() {
    return this.#held.reduce((n, [, m]) => n + m.length, 0);
  }
  start(channels: string[], handlers: TransportHandlers) {
    return this.#inner.start(channels, handlers);
  }
  publish(channel: string, messages: string[]) {
    const held = messages.filter((m) => this.hold(m));
    if (held.length > 0) this.#held.push([channel, held]);
    const rest = messages.filter((m) => !this.hold(m));
    if (rest.length > 0) this.#inner.publish(channel, rest);
  }
  release() {
    this.hold = () => false;
    for (const [channel, messages] of this.#held.splice(0)) this.#inner.publish(channel, messages);
  }
  stats() {
    return this.#inner.stats();
  }
  stop() {
    return this.#inner.stop();
  }
}

let db: TestDatabase;
let a: TestServer; // runs the jobs
let b: TestServer; // API and sockets only
let bTransport: HoldingTransport;
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
  bTransport = new HoldingTransport(transport());
  b = await startTestServer({
    db,
    busTransport: bTransport,
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

test("a task's `created` reaches another node's watcher first, even when the node that runs it publishes before the node that created it", async () => {
  // b creates, a runs. b publishes `created` after its insert commits; a may claim the task and
  // publish `started` first, and the bus orders messages per publisher only. Here b's `created`
  // is held on its way out until the task has ended, the worst case of that race.
  const token = await a.token('alice');
  const onA = await follow(a.url, token, 'user:alice');
  try {
    bTransport.hold = (m) => m.includes('"e":"created"');
    const task = await b.createTask(token, { steps: 2, interval_ms: 5 });
    await onA.until('completed', (p) => p.task_id === task.task_id);
    assert.ok(bTransport.heldCount > 0, "b's own `created` was held");
    bTransport.release();
    // The held `created` left before this next task's: once that one is seen, the first has come.
    const next = await b.createTask(token, { steps: 1, interval_ms: 5 });
    await onA.until('completed', (p) => p.task_id === next.task_id);
    const mine = onA.events.filter((e) => e.payload.task_id === task.task_id);
    assert.deepEqual(
      mine.map((e) => e.event),
      ['created', 'started', 'progress', 'progress', 'completed'],
      'created first, once; then the rest in order',
    );
    assert.deepEqual(
      mine.map((e) => e.payload.seq),
      mine.map((_, i) => i),
    );
    // What the watcher got as `created` is the task as it was created, field for field.
    const stored = (await b.api(token, 'GET', `/api/tasks/${task.task_id}`)).body;
    assert.deepEqual(mine[0].payload, {
      ...stored,
      status: 'queued',
      progress: 0,
      message: null,
      result: null,
      error: null,
      attempt: 0,
      node: null,
      output: { start: 0, next: 0 },
      seq: 0,
      updated_at: stored.inserted_at,
    });
    assert.equal(
      onA.events.filter((e) => e.event === 'created' && e.payload.task_id === next.task_id).length,
      1,
    );
  } finally {
    bTransport.release();
    onA.close();
  }
});
