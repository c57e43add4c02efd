// /metrics: the figures an operator needs move when sockets connect and tasks run: sockets,
// channels, progress in and events out, conflation for a slow reader, attempts, snapshot
// flushes, the in-flight counts read at scrape time, event-loop lag and the process defaults.
import assert from 'node:assert/strict';
import type { Socket as NetSocket } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { createClient } from '../../src/client/index.ts';
import { createMetrics, type InFlightCounts, type MetricSources } from '../../src/http/metrics.ts';
import { defineTask } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const gates = new Map<string, () => void>();
/** Waits for the test (`await open(id)`), then reports `count` progress updates in one go (a slow reader falls behind). */
const burst = defineTask({
  name: 'burst',
  async run(ctx) {
    await new Promise<void>((resolve) => gates.set(ctx.taskId, resolve));
    const count = Number(ctx.input.count);
    const message = String(ctx.input.message ?? '');
    for (let i = 1; i <= count; i++) ctx.progress(i / count, message);
    return { count };
  },
});

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({
    tasks: [burst],
    config: { socketSoftBufferBytes: 1024, socketHardBufferBytes: 256 * 1024 * 1024 },
  });
  token = await t.token('ops');
});
after(() => t.stop());

/** Lets a waiting `burst` task go on. */
async function open(taskId: string): Promise<void> {
  (await waitFor(() => gates.get(taskId), 'the burst handler to start'))();
}

async function scrape(): Promise<string> {
  const res = await fetch(`${t.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

/** The value of a series (labels given must match; several matching series are summed). */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

test('sockets and channels are counted as clients connect, join and leave', async () => {
  await waitFor(async () => value(await scrape(), 'taskwire_open_sockets') === 0, 'no sockets');
  const tw = createClient({ url: t.url, token });
  const task = await tw.submit({ type: 'burst', count: 3 });
  const during = await scrape();
  assert.equal(value(during, 'taskwire_open_sockets'), 1);
  assert.equal(value(during, 'taskwire_joined_channels'), 1);
  await open(task.id);
  await task.result();
  tw.close();
  await waitFor(async () => value(await scrape(), 'taskwire_open_sockets') === 0, 'the socket to close');
  assert.equal(value(await scrape(), 'taskwire_joined_channels'), 0);
});

test('progress in, events out, attempts, creations and snapshot flushes move when tasks run', async () => {
  const before = await scrape();
  const tw = createClient({ url: t.url, token });
  try {
    const task = await tw.submit({ type: 'demo', steps: 5, interval_ms: 60 });
    await task.result();
  } finally {
    tw.close();
  }
  const after = await scrape();
  const grew = (name: string, labels: Record<string, string> = {}) =>
    (value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0);
  assert.ok(grew('taskwire_progress_events_total') >= 5, 'progress in');
  assert.ok(
    grew('taskwire_events_delivered_total') >= 2,
    'events out (at least started/progress, completed)',
  );
  assert.equal(grew('taskwire_tasks_created_total', { type: 'demo' }), 1);
  assert.equal(grew('taskwire_attempts_total', { type: 'demo', outcome: 'completed' }), 1);
  assert.ok(grew('taskwire_snapshot_flush_seconds_count') >= 1, 'a snapshot flush was timed');
  assert.ok(grew('taskwire_snapshot_rows_total') >= 1, 'and its rows counted');
});

test('a slow reader: its progress is conflated, and the counter shows it', async () => {
  const task = await t.createTask(token, { type: 'burst', count: 1500, message: 'x'.repeat(6000) });
  // A raw Phoenix client that joins, then stops reading (its TCP socket paused).
  const ws = new WebSocket(`${t.wsUrl}/websocket?vsn=2.0.0&token=${token}`, { perMessageDeflate: false });
  let tcp: NetSocket | undefined;
  ws.on('upgrade', (res) => {
    tcp = res.socket as NetSocket;
  });
  ws.on('error', () => {});
  await new Promise((resolve) => ws.once('open', resolve));
  const joined = new Promise((resolve) => ws.once('message', resolve));
  ws.send(JSON.stringify(['1', '1', `task:${task.task_id}`, 'phx_join', {}]));
  await joined;
  const before = value(await scrape(), 'taskwire_conflated_updates_total') ?? 0;
  tcp!.pause();
  await open(task.task_id);
  await t.waitForStatus(token, task.task_id, ['completed']);
  const after = value(await scrape(), 'taskwire_conflated_updates_total') ?? 0;
  tcp!.resume();
  ws.terminate();
  assert.ok(after > before, `conflated updates counted (${before} → ${after})`);
});

test('event-loop lag and the default process metrics are there, prefixed taskwire_', async () => {
  const text = await scrape();
  for (const name of [
    'taskwire_nodejs_eventloop_lag_seconds',
    'taskwire_nodejs_eventloop_lag_p99_seconds',
    'taskwire_process_cpu_seconds_total',
    'taskwire_process_resident_memory_bytes',
    'taskwire_nodejs_heap_size_used_bytes',
    'taskwire_task_actors',
    'taskwire_snapshot_pending',
    'taskwire_queue_pickup_seconds_count',
  ]) {
    assert.ok(value(text, name) !== undefined, `${name} is reported`);
  }
  const names = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
  assert.deepEqual(
    [...names].filter((n) => !n.startsWith('taskwire_')),
    [],
    'every metric is prefixed',
  );
});

test('tasks by status and queue depth come from one read per scrape, and vanish when it fails', async () => {
  let reads = 0;
  const sample: InFlightCounts = {
    tasks: { queued: 4, running: 2 },
    queue: { ready: 3, scheduled: 1, locked: 2 },
    oldestReadySeconds: 0.25,
  };
  const sources = (fail: boolean): MetricSources => ({
    sockets: () => 0,
    channels: () => 0,
    conflated: () => 0,
    eventsOut: () => 0,
    liveActors: () => 0,
    snapshotPending: () => 0,
    counts: async () => {
      reads += 1;
      if (fail) throw new Error('database away');
      return sample;
    },
  });
  const metrics = createMetrics(() => sources(false));
  const text = await metrics.registry.metrics();
  assert.equal(reads, 1, 'one read for all the gauges of a scrape');
  assert.equal(value(text, 'taskwire_tasks', { status: 'queued' }), 4);
  assert.equal(value(text, 'taskwire_tasks', { status: 'running' }), 2);
  assert.equal(value(text, 'taskwire_queue_jobs', { state: 'ready' }), 3);
  assert.equal(value(text, 'taskwire_queue_jobs', { state: 'scheduled' }), 1);
  assert.equal(value(text, 'taskwire_queue_oldest_ready_seconds'), 0.25);
  const failed = await createMetrics(() => sources(true)).registry.metrics();
  assert.equal(value(failed, 'taskwire_tasks'), undefined, 'no stale figures when the read fails');
  assert.equal(value(failed, 'taskwire_open_sockets'), 0, 'the rest still scrapes');
});

test('the running server reports tasks by status, queue depth and pickup latency', async () => {
  const text = await scrape();
  assert.match(text, /taskwire_tasks\{/, 'the server passes its in-flight counts to /metrics');
  const task = await t.createTask(token, { type: 'burst', count: 1 });
  await t.waitForStatus(token, task.task_id, ['running']);
  const during = await scrape();
  assert.ok((value(during, 'taskwire_tasks', { status: 'running' }) ?? 0) >= 1);
  assert.ok((value(during, 'taskwire_queue_jobs', { state: 'locked' }) ?? 0) >= 1);
  assert.ok((value(during, 'taskwire_queue_pickup_seconds_count') ?? 0) >= 1, 'pickups are timed');
  assert.ok((value(during, 'taskwire_queue_pickup_seconds_sum') ?? 1) < 60, 'in seconds');
  await open(task.task_id);
  await t.waitForStatus(token, task.task_id, ['completed']);
});
