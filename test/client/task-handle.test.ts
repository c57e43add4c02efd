// A task handle folds events by seq: duplicates and stale events are dropped, a rejoin's state
// is applied only when newer, and an end learned from a state still fires its event once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Task,
  TaskCancelledError,
  type TaskEventBase,
  TaskFailedError,
  TaskHandle,
} from '../../src/client/index.ts';
import type { TaskFeed } from '../../src/client/task-handle.ts';
import { taskFixture } from '../helpers/task-fixture.ts';

const ID = '01900000-0000-7000-8000-000000000001';

function task(over: Partial<Task> = {}): Task {
  return taskFixture({ task_id: ID, status: 'queued', attempt: 0, seq: 0, ...over });
}

function event(seq: number, over: Record<string, unknown> = {}) {
  return {
    task_id: ID,
    status: 'running',
    progress: seq / 10,
    message: null,
    seq,
    attempt: 1,
    at: 1000 + seq,
    ...over,
  };
}

function handle(initial = task()) {
  let feed!: TaskFeed;
  const released: string[] = [];
  const listenerErrors: unknown[] = [];
  const h = new TaskHandle(
    initial,
    {
      cancel: async () => initial,
      release: (id) => released.push(id),
      listenerError: (err) => listenerErrors.push(err),
    },
    (f) => {
      feed = f;
    },
  );
  const log: string[] = [];
  for (const name of ['started', 'progress', 'retrying', 'completed', 'failed', 'cancelled'] as const) {
    h.on(name, (p: TaskEventBase) => log.push(`${name}:${p.seq}`));
  }
  h.on('update', (s) => log.push(`update:${s.seq}`));
  return { h, feed, log, released, listenerErrors };
}

test('an event at or below the last applied seq is dropped: no duplicates, nothing backwards', () => {
  const { h, feed, log } = handle();
  assert.equal(feed.event('started', event(1)), true);
  assert.equal(feed.event('progress', event(2)), true);
  assert.equal(feed.event('progress', event(2)), false, 'duplicate');
  assert.equal(feed.event('progress', event(1)), false, 'stale');
  assert.equal(feed.event('progress', event(4)), true, 'a gap is fine (conflation)');
  assert.equal(feed.event('progress', event(3)), false, 'late');
  assert.equal(feed.event('phx_reply', event(9)), false, 'not a task event');
  assert.deepEqual(log, ['started:1', 'update:1', 'progress:2', 'update:2', 'progress:4', 'update:4']);
  assert.equal(h.state.seq, 4);
  assert.equal(h.progress, 0.4);
  assert.equal(h.state.updated_at, new Date(1004).toISOString());
});

test("the join reply's state counts: events it already folded in are dropped", () => {
  const { h, feed, log } = handle();
  assert.equal(feed.snapshot(task({ status: 'running', progress: 0.5, seq: 5, attempt: 1 })), true);
  assert.equal(feed.event('progress', event(5)), false);
  assert.equal(feed.snapshot(task({ status: 'running', progress: 0.3, seq: 3 })), false, 'an older state');
  assert.equal(feed.event('progress', event(6)), true);
  assert.deepEqual(log, ['update:5', 'progress:6', 'update:6']);
  assert.equal(h.status, 'running');
});

test('a task that ended while away fires its terminal event once, from the state', async () => {
  const { h, feed, log, released } = handle(task({ status: 'running', seq: 2 }));
  const result = h.result();
  feed.snapshot(task({ status: 'completed', progress: 1, seq: 9, result: { n: 1 } }));
  assert.deepEqual(await result, { n: 1 });
  assert.equal(feed.event('completed', event(9, { status: 'completed', result: { n: 1 } })), false);
  assert.deepEqual(log, ['update:9', 'completed:9']);
  assert.deepEqual(released, [ID], 'the channel is released once the task ended');
  assert.equal(h.done, true);
});

test('failed and cancelled reject result() with their typed errors, also when asked afterwards', async () => {
  const failed = handle();
  const pending = failed.h.result();
  failed.feed.event('failed', event(3, { status: 'failed', error: { message: 'boom' } }));
  const err = await pending.catch((e: unknown) => e);
  assert.ok(err instanceof TaskFailedError);
  assert.equal(err.task.error?.message, 'boom');
  await assert.rejects(failed.h.result(), TaskFailedError);

  const cancelled = handle();
  cancelled.feed.event('cancelled', event(2, { status: 'cancelled' }));
  await assert.rejects(cancelled.h.result(), TaskCancelledError);
});

test('a throwing listener is reported and does not stop the others or the folding', () => {
  const { h, feed, listenerErrors } = handle();
  h.on('progress', () => {
    throw new Error('listener bug');
  });
  let heard = 0;
  h.on('progress', () => {
    heard += 1;
  });
  feed.event('progress', event(1));
  assert.equal(heard, 1);
  assert.equal(h.state.seq, 1);
  assert.equal((listenerErrors[0] as Error)?.message, 'listener bug');
});
