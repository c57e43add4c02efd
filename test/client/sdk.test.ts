// The client SDK against a real server over real sockets: submit → progress → result, failure
// and cancel as typed rejections, one socket for many tasks, and a network cut in the middle of
// a task that loses nothing and applies nothing twice.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  createClient,
  type Task,
  TaskCancelledError,
  type TaskEventBase,
  TaskFailedError,
  type TaskHandle,
  TaskwireApiError,
  TaskwireConnectionError,
} from '../../src/client/index.ts';
import { defineTask } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';

/** A task the test drives step by step: `remote.get(id).step(0.3)`, `.finish(result)`. */
const remote = new Map<string, { step(p: number, m?: string): void; finish(r: unknown): void }>();
const remoteTask = defineTask({
  name: 'remote',
  maxAttempts: 1,
  run: (ctx) =>
    new Promise((resolve, reject) => {
      remote.set(ctx.taskId, { step: (p, m) => ctx.progress(p, m), finish: resolve });
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    }),
});

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ tasks: [remoteTask] });
  token = await t.token('alice');
});
after(() => t.stop());

/** Records every event and update a handle emits, in order. */
function record(task: TaskHandle<any>) {
  const seen: { name: string; seq: number; status: string; progress: number }[] = [];
  for (const name of ['started', 'progress', 'retrying', 'completed', 'failed', 'cancelled'] as const) {
    task.on(name, (p: TaskEventBase) =>
      seen.push({ name, seq: p.seq, status: p.status, progress: p.progress }),
    );
  }
  task.on('update', (s) => seen.push({ name: 'update', seq: s.seq, status: s.status, progress: s.progress }));
  return seen;
}

function assertIncreasing(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i++)
    assert.ok(seqs[i] > seqs[i - 1], `seq ${seqs[i]} after ${seqs[i - 1]}`);
}

test('submit → progress events in seq order → result', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const task = await tw.submit<{ steps: number }>({
      type: 'demo',
      steps: 4,
      interval_ms: 30,
      message: 'hi',
    });
    assert.match(task.id, /^[0-9a-f-]{36}$/);
    const seen = record(task);
    assert.deepEqual(await task.result(), { steps: 4 });
    const events = seen.filter((e) => e.name !== 'update');
    assertIncreasing(events.map((e) => e.seq));
    const progress = events.filter((e) => e.name === 'progress').map((e) => e.progress);
    assertIncreasing(progress);
    assert.equal(progress.at(-1), 1);
    assert.equal(events.at(-1)?.name, 'completed');
    assert.equal(task.state.status, 'completed');
    assert.equal(task.state.progress, 1);
    assert.equal(task.state.message, 'hi');
    assert.deepEqual(task.state.result, { steps: 4 });
    assert.equal(task.done, true);
    // Afterwards the same answer at once, and the channel is left.
    assert.deepEqual(await task.result(), { steps: 4 });
    await waitFor(() => t.server.channels.stats().channels === 0, 'the channel to be left');
  } finally {
    tw.close();
  }
});

test('a task that ends before or during the join still settles', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const tasks = await Promise.all(Array.from({ length: 8 }, () => tw.submit({ steps: 1, interval_ms: 0 })));
    assert.deepEqual(await Promise.all(tasks.map((task) => task.result())), Array(8).fill({ steps: 1 }));
    const done = await tw.watch(tasks[0].id);
    assert.equal(done.status, 'completed', 'watching a finished task answers from its state');
    assert.deepEqual(await done.result(), { steps: 1 });
  } finally {
    tw.close();
  }
});

test('a failed task rejects result() with TaskFailedError, after retrying', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const task = await tw.submit({ steps: 2, interval_ms: 0, fail_at_step: 1, max_attempts: 2 });
    const seen = record(task);
    const err = await task.result().then(
      () => assert.fail('should reject'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof TaskFailedError, String(err));
    assert.equal(err.taskId, task.id);
    assert.equal(err.code, 'task_failed');
    assert.equal(err.task.status, 'failed');
    assert.match(err.task.error?.message ?? '', /step 1/);
    assert.ok(
      seen.some((e) => e.name === 'retrying'),
      'saw the retry',
    );
    assert.equal(seen.filter((e) => e.name === 'failed').length, 1);
    assertIncreasing(seen.filter((e) => e.name !== 'update').map((e) => e.seq));
  } finally {
    tw.close();
  }
});

test('cancel(): the cancelled event arrives and result() rejects with TaskCancelledError', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const task = await tw.submit({ type: 'remote' });
    const cancelled: unknown[] = [];
    task.on('cancelled', (p) => cancelled.push(p));
    await waitFor(() => remote.get(task.id), 'the handler to start');
    remote.get(task.id)!.step(0.5, 'half');
    await waitFor(() => task.progress === 0.5, 'progress 0.5');
    const answer = await task.cancel();
    assert.equal(answer.task_id, task.id);
    await assert.rejects(task.result(), TaskCancelledError);
    assert.equal(cancelled.length, 1);
    assert.equal(task.status, 'cancelled');
    // A second cancel is a conflict, typed.
    const err = await task.cancel().catch((e: unknown) => e);
    assert.ok(err instanceof TaskwireApiError && err.status === 409 && err.code === 'conflict', String(err));
  } finally {
    tw.close();
  }
});

test('one socket carries every task of a client; watch() follows an existing task', async () => {
  const tw = createClient({ url: t.url, token });
  const other = createClient({ url: t.url, token });
  try {
    await waitFor(() => t.server.channels.stats().sockets === 0, 'earlier sockets to close');
    const [a, b] = await Promise.all([tw.submit({ type: 'remote' }), tw.submit({ type: 'remote' })]);
    assert.equal(t.server.channels.stats().sockets, 1, 'one socket for two tasks');
    assert.equal(t.server.channels.stats().channels, 2);
    // Another client (a second window) follows `a` by id.
    const watched = await other.watch(a.id);
    assert.equal(await tw.watch(a.id), a, 'the same handle for a task already followed');
    await waitFor(() => remote.get(a.id) && remote.get(b.id), 'both handlers');
    remote.get(a.id)!.step(0.4);
    await waitFor(() => watched.progress === 0.4, 'the watcher sees progress');
    remote.get(a.id)!.finish('A');
    remote.get(b.id)!.finish('B');
    assert.deepEqual(await Promise.all([a.result(), b.result(), watched.result()]), ['A', 'B', 'A']);
  } finally {
    tw.close();
    other.close();
  }
});

test('a network cut mid-task loses nothing and applies nothing twice; an end missed while away still settles', async () => {
  const proxy: TcpProxy = await startProxy(t.url);
  const tw = createClient({
    url: proxy.url,
    token,
    socketOptions: { reconnectAfterMs: () => 50, rejoinAfterMs: () => 50 },
  });
  try {
    const task = await tw.submit({ type: 'remote' });
    const seen = record(task);
    await waitFor(() => remote.get(task.id), 'the handler to start');
    const ctl = remote.get(task.id)!;
    ctl.step(0.1);
    ctl.step(0.2);
    await waitFor(() => task.progress === 0.2, 'progress 0.2 over the socket');

    // Cut: the TCP connection dies and reconnects are refused while progress goes on.
    proxy.setDown(true);
    proxy.drop();
    await waitFor(() => !tw.socket?.isConnected(), 'the client to notice');
    ctl.step(0.3);
    ctl.step(0.4, 'while away');
    // The client keeps trying (every 50 ms): two refused reconnects after the steps.
    const refusedBefore = proxy.refused;
    await waitFor(() => proxy.refused >= refusedBefore + 2, 'two refused reconnects');
    assert.equal(task.progress, 0.2, 'nothing arrives while cut');
    proxy.setDown(false);
    // The rejoin's reply carries the state: 0.4, with the seq of the last event folded in.
    await waitFor(() => task.progress === 0.4, 'the rejoin to catch up');
    assert.equal(task.state.message, 'while away');
    ctl.step(0.6);
    await waitFor(() => task.progress === 0.6, 'live events again after the rejoin');

    // Second cut, and the task ends while the client is away.
    proxy.setDown(true);
    proxy.drop();
    await waitFor(() => !tw.socket?.isConnected(), 'the client to notice again');
    ctl.step(0.8);
    ctl.finish({ ok: true });
    await t.waitForStatus(token, task.id, ['completed']);
    proxy.setDown(false);
    assert.deepEqual(await task.result(), { ok: true });

    const events = seen.filter((e) => e.name !== 'update');
    const updates = seen.filter((e) => e.name === 'update');
    assertIncreasing(events.map((e) => e.seq));
    assertIncreasing(updates.map((e) => e.seq));
    assert.equal(events.filter((e) => e.name === 'completed').length, 1, 'completed once');
    assert.ok(
      updates.some((u) => u.progress === 0.4),
      'the state missed while cut was applied',
    );
    assert.equal(task.state.status, 'completed');
    assert.equal(task.state.seq, (await t.api(token, 'GET', `/api/tasks/${task.id}`)).body.seq);
  } finally {
    tw.close();
    await proxy.close();
  }
});

test('the LongPoll transport works the same', async () => {
  const tw = createClient({ url: t.url, token, longPoll: true });
  try {
    const task = await tw.submit({ steps: 3, interval_ms: 20 });
    assert.deepEqual(await task.result(), { steps: 3 });
  } finally {
    tw.close();
  }
});

test('list() filters and pages with the cursor (token given as a function)', async () => {
  const bob = await t.token('bob');
  const tw = createClient({ url: t.url, token: () => bob });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await t.createTask(bob, { steps: 1, interval_ms: 0 })).task_id);
    const first = await tw.list({ limit: 2 });
    assert.equal(first.tasks.length, 2);
    assert.ok(first.next_cursor);
    const second = await tw.list({ limit: 2, cursor: first.next_cursor! });
    assert.deepEqual(
      [...first.tasks, ...second.tasks].map((x: Task) => x.task_id),
      ids.reverse(),
      'newest first, no overlap',
    );
    assert.equal(second.next_cursor, null);
    const none = await tw.list({ type: 'remote' });
    assert.deepEqual(none.tasks, []);
  } finally {
    tw.close();
  }
});

test('errors are typed: unknown task, foreign task, bad token, server down, bad input', async () => {
  const tw = createClient({ url: t.url, token });
  const mallory = createClient({ url: t.url, token: await t.token('mallory') });
  try {
    const mine = await t.createTask(token, { steps: 1, interval_ms: 0 });
    for (const attempt of [
      () => tw.watch('00000000-0000-7000-8000-000000000000'),
      () => mallory.watch(mine.task_id),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      assert.ok(
        err instanceof TaskwireApiError && err.status === 404 && err.code === 'not_found',
        String(err),
      );
    }
    const bad = createClient({ url: t.url, token: 'not-a-token' });
    const unauthorized = await bad.list().catch((e: unknown) => e);
    assert.ok(unauthorized instanceof TaskwireApiError && unauthorized.status === 401, String(unauthorized));
    const invalid = await tw.submit({ type: 'demo', steps: -1 }).catch((e: unknown) => e);
    assert.ok(invalid instanceof TaskwireApiError && invalid.code === 'validation_failed', String(invalid));
    assert.ok(Array.isArray(invalid.details));
    const down = createClient({ url: 'http://127.0.0.1:1', token });
    const unreachable = await down.submit({}).catch((e: unknown) => e);
    assert.ok(unreachable instanceof TaskwireConnectionError, String(unreachable));
    assert.match(unreachable.message, /^cannot reach taskwire at http:\/\/127\.0\.0\.1:1/);
  } finally {
    tw.close();
    mallory.close();
  }
});

test('close() rejects pending results instead of leaving them hanging', async () => {
  const tw = createClient({ url: t.url, token });
  const task = await tw.submit({ type: 'remote' });
  const pending = task.result();
  tw.close();
  await assert.rejects(pending, { name: 'TaskwireError', code: 'closed' });
  await waitFor(() => remote.get(task.id), 'the handler');
  remote.get(task.id)!.finish(null);
});

test('submit options priority, runAt and delayMs reach the task; retry() runs a cancelled task again', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const at = new Date(Date.now() + 60_000);
    const delayed = await tw.create({ type: 'remote', note: 'x' }, { priority: 7, runAt: at });
    assert.equal(delayed.priority, 7);
    assert.equal(delayed.scheduled_at, at.toISOString());
    assert.deepEqual(delayed.input, { note: 'x' });
    const later = await tw.create({ type: 'remote' }, { delayMs: 60_000, priority: -3 });
    assert.ok(Date.parse(later.scheduled_at!) >= Date.now() + 59_000);
    assert.equal(later.priority, -3);
    await assert.rejects(
      tw.create({ type: 'remote' }, { priority: 101 }),
      (err: unknown) => err instanceof TaskwireApiError && err.code === 'validation_failed',
    );
    for (const task of [delayed, later]) await tw.cancel(task.task_id);

    const handle = await tw.submit({ type: 'remote' });
    await waitFor(() => remote.get(handle.id), 'the attempt runs');
    await tw.cancel(handle.id);
    await assert.rejects(handle.result(), TaskCancelledError);
    const done = await tw.create({ type: 'remote' });
    await waitFor(() => remote.get(done.task_id), 'it runs');
    remote.get(done.task_id)!.finish('ok');
    await waitFor(async () => (await tw.get(done.task_id)).status === 'completed', 'it completes');
    await assert.rejects(
      tw.retry(done.task_id),
      (err: unknown) => err instanceof TaskwireApiError && err.code === 'conflict' && err.status === 409,
    );
    const again = await tw.retry(handle.id);
    assert.equal(again.status, 'queued');
    assert.equal(again.attempt, 1);
    await waitFor(async () => (await tw.get(handle.id)).attempt === 2, 'the new attempt runs');
    await tw.cancel(handle.id);
  } finally {
    tw.close();
  }
});
