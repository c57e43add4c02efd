// The store behind useTask, in Node against a real server (no React needed): views are immutable
// snapshots with the text and the end, rebuilt at most once per throttle window; components using
// one id share one store and one channel, left after the last unsubscribes (but never a handle the
// app made itself); an unknown id is an error view, not a hang.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from '../../src/client/index.ts';
import { type TaskView, taskStore } from '../../src/react/task-store.ts';
import { generatedText } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ config: { outputFlushMs: 20 } });
  token = await t.token('alice');
});
after(() => t.stop());

test('views follow a generate task to its exact text; throttled; the channel is left after the last unsubscribe', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const prompt = 'a store for react';
    const task = await t.createTask(token, { type: 'generate', prompt, tokens: 120, interval_ms: 2 });
    const store = taskStore(tw, task.task_id, { throttleMs: 50 });
    assert.equal(taskStore(tw, task.task_id), store, 'one store per client and id');
    assert.equal(store.getSnapshot().loading, true);
    const views: TaskView[] = [];
    const stamps: number[] = [];
    const off1 = store.subscribe(() => {
      views.push(store.getSnapshot());
      stamps.push(Date.now());
    });
    const off2 = store.subscribe(() => {});
    await waitFor(() => store.getSnapshot().outputDone, 'the whole output', 30_000);
    const last = store.getSnapshot();
    assert.equal(last.output, generatedText(prompt, 120));
    assert.equal(last.status, 'completed');
    assert.deepEqual(last.result, { tokens: 120, length: last.output.length });
    assert.equal(last.error, null);
    assert.equal(last.done, true);
    assert.equal(store.getSnapshot(), last, 'the same object until something changes');
    for (let i = 1; i < views.length; i++) {
      assert.notEqual(views[i], views[i - 1], 'a new object per change');
      assert.ok(views[i].output.startsWith(views[i - 1].output), 'the text only grows');
    }
    // 120 chunks (plus progress) came in far fewer views: at most one per 50 ms window after the first.
    assert.ok(views.length < 120, `${views.length} views`);
    // (a listener's own clock reading comes a moment after the store's: 2 ms of slack)
    for (let i = 1; i < stamps.length; i++)
      assert.ok(stamps[i] - stamps[i - 1] >= 48, `throttled: ${stamps.map((s) => s - stamps[0])}`);
    off1();
    off2();
    await waitFor(() => store.stopped, 'the store to let go');
    assert.notEqual(taskStore(tw, task.task_id), store, 'a later use makes a new store');
  } finally {
    tw.close();
  }
});

test("a running task's channel is left when the last subscriber goes; a handle the app made stays followed", async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const running = await t.createTask(token, {
      type: 'generate',
      prompt: 'x y',
      tokens: 2000,
      interval_ms: 20,
    });
    const store = taskStore(tw, running.task_id, { throttleMs: 0 });
    const off = store.subscribe(() => {});
    await waitFor(() => store.getSnapshot().output.length > 0, 'some output');
    await waitFor(() => t.server.channels.stats().channels === 1, 'one channel');
    off();
    // StrictMode's unsubscribe-resubscribe in one go keeps it.
    const again = store.subscribe(() => {});
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(store.stopped, false);
    again();
    await waitFor(() => t.server.channels.stats().channels === 0, 'the channel to be left');
    assert.equal(tw.handle(running.task_id), undefined);

    const mine = await tw.watch(running.task_id);
    const shared = taskStore(tw, running.task_id);
    const off3 = shared.subscribe(() => {});
    await waitFor(() => shared.getSnapshot().handle === mine, 'the store to use the app handle');
    off3();
    await waitFor(() => shared.stopped, 'the store to let go');
    assert.equal(tw.handle(running.task_id), mine, "the app's handle is still followed");
    assert.equal(t.server.channels.stats().channels, 1);
    await t.api(token, 'POST', `/api/tasks/${running.task_id}/cancel`);
  } finally {
    tw.close();
  }
});

test('an unknown task gives an error view (not_found), not a view that loads forever', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const store = taskStore(tw, '00000000-0000-7000-8000-000000000000');
    const off = store.subscribe(() => {});
    await waitFor(() => store.getSnapshot().error, 'the error');
    const view = store.getSnapshot();
    assert.equal(view.error?.code, 'not_found');
    assert.equal(view.loading, false);
    assert.equal(view.state, null);
    off();
  } finally {
    tw.close();
  }
});
