// task.output() against a real server over real sockets: the exact text of a `generate` task live
// and from a finished one, through cuts of the network (each chunk once), and resets, whether
// heard live or learned from the reply of a rejoin after the client was away.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient, type OutputItem, type TaskHandle } from '../../src/client/index.ts';
import { defineTask, generatedText } from '../../src/tasks/index.ts';
import { gatedOutputTask } from '../helpers/gated-output.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';

/** Attempt 1 writes two chunks and fails; attempt 2 writes its own and completes. */
const flaky = defineTask({
  name: 'flaky-writer',
  maxAttempts: 2,
  run: (ctx) => {
    if (ctx.attempt === 1) {
      ctx.output('first ');
      ctx.output('try');
      throw new Error('attempt 1 gives up');
    }
    ctx.output('second ');
    ctx.output('try');
    return 'ok';
  },
});

const { task: gated, gates } = gatedOutputTask('gated-writer', 'attempt 1 fails while the client is away');

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ tasks: [flaky, gated], config: { outputFlushMs: 20 } });
  token = await t.token('alice');
});
after(() => t.stop());

/** Reads an iterator to its end: the items, and the text a consumer that clears on reset shows. */
async function consume(it: AsyncIterable<OutputItem>) {
  const items: OutputItem[] = [];
  let shown = '';
  for await (const item of it) {
    items.push(item);
    if (item.kind === 'reset') shown = '';
    else shown += item.data as string;
  }
  return { items, shown };
}

/**
 * How often each index reached the handle: the chunks it already held when the listener came
 * (on a loaded machine the first ones can arrive with the join's reply), then each `output` event.
 */
function countDeliveries(task: TaskHandle) {
  const seen = new Map<number, number>(task.chunks.map((c) => [c.index, 1]));
  task.on('output', (c) => seen.set(c.index, (seen.get(c.index) ?? 0) + 1));
  return seen;
}

test('submit a generate task: for await over task.output() gives the exact text, each index once, then ends', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const prompt = 'the quick brown fox';
    const task = await tw.submit({ type: 'generate', prompt, tokens: 40, interval_ms: 5 });
    const { items, shown } = await consume(task.output());
    const expected = generatedText(prompt, 40);
    assert.equal(shown, expected);
    assert.deepEqual(
      items.map((i) => (i.kind === 'chunk' ? i.index : -1)),
      Array.from({ length: 40 }, (_, i) => i),
    );
    assert.equal(task.text, expected);
    assert.deepEqual(await task.result(), { tokens: 40, length: expected.length });
    assert.deepEqual(task.outputPosition, { start: 0, next: 40, complete: true });
    await waitFor(() => t.server.channels.stats().channels === 0, 'the channel to be left');
  } finally {
    tw.close();
  }
});

test("a finished task's output comes through its channel: all of it, from a stored index, or none", async () => {
  const prompt = 'stored in postgres then served again';
  const created = await t.createTask(token, { type: 'generate', prompt, tokens: 300, interval_ms: 0 });
  await t.waitForStatus(token, created.task_id, ['completed']);
  const expected = generatedText(prompt, 300);
  const tw = createClient({ url: t.url, token });
  try {
    const all = await tw.watch(created.task_id);
    assert.equal(all.status, 'completed');
    const { items, shown } = await consume(all.output());
    assert.equal(shown, expected);
    assert.equal(items.length, 300);
    await waitFor(() => !tw.handle(created.task_id), 'the channel to be left once the output is in');

    const tw2 = createClient({ url: t.url, token });
    try {
      const tail = await tw2.watch(created.task_id, { outputFrom: 250 });
      const rest = await consume(tail.output());
      assert.equal(rest.shown, expected.split(' ').slice(250).join(' '));
      assert.equal(rest.items[0].kind === 'chunk' && rest.items[0].index, 250);
    } finally {
      tw2.close();
    }
    const tw3 = createClient({ url: t.url, token });
    try {
      const none = await tw3.watch(created.task_id, { output: false });
      assert.equal(none.text, '');
      assert.throws(() => none.output(), { code: 'output_off' });
      assert.equal(tw3.socket, undefined, 'a finished task followed without output needs no socket');
    } finally {
      tw3.close();
    }
  } finally {
    tw.close();
  }
});

test('network cuts mid-stream: each rejoin asks for output_from = next; the text is exact, no chunk twice', async () => {
  const proxy = await startProxy(t.url);
  const tw = createClient({
    url: proxy.url,
    token,
    socketOptions: { reconnectAfterMs: () => 50, rejoinAfterMs: () => 50 },
  });
  try {
    const prompt = 'cut the wire and carry on where you were';
    const tokens = 1500;
    const task = await tw.submit({ type: 'generate', prompt, tokens, interval_ms: 1 });
    const deliveries = countDeliveries(task);
    const reading = consume(task.output());
    let cuts = 0;
    for (const at of [200, 500, 800, 1100]) {
      await waitFor(() => task.chunks.length >= at || task.done, `${at} chunks`, 60_000);
      if (task.done) break;
      proxy.drop();
      cuts += 1;
      await waitFor(() => !tw.socket?.isConnected(), 'the client to notice the cut');
    }
    const { shown } = await reading;
    assert.equal(shown, generatedText(prompt, tokens));
    assert.equal(task.text, shown);
    assert.equal(deliveries.size, tokens);
    assert.deepEqual(
      [...deliveries].filter(([, n]) => n !== 1),
      [],
      'each chunk once',
    );
    assert.ok(cuts >= 2, `cut ${cuts} times mid-stream`);
  } finally {
    tw.close();
    await proxy.close();
  }
});

test('a retry that starts the output over: chunks, a reset marker, then only the new attempt in task.text', async () => {
  const tw = createClient({ url: t.url, token });
  try {
    const task = await tw.submit({ type: 'flaky-writer' });
    const resets: number[] = [];
    task.on('output_reset', (r) => resets.push(r.start));
    const { items, shown } = await consume(task.output());
    assert.equal(await task.result(), 'ok');
    assert.equal(shown, 'second try');
    assert.equal(task.text, 'second try');
    assert.deepEqual(
      task.chunks.map((c) => [c.index, c.attempt]),
      [
        [2, 2],
        [3, 2],
      ],
    );
    // The first attempt's chunks may have arrived before the reset, or (when the join came later)
    // never: either way the last reset says 2 and nothing of attempt 1 follows it.
    const last = items.findLastIndex((i) => i.kind === 'reset');
    const after = items.slice(last + 1);
    assert.deepEqual(
      after.map((i) => i.kind === 'chunk' && i.data),
      ['second ', 'try'],
    );
    if (items.some((i) => i.kind === 'chunk' && i.attempt === 1)) {
      assert.deepEqual(items[last], { kind: 'reset', start: 2, attempt: 2 });
      assert.deepEqual(resets, [2]);
    }
  } finally {
    tw.close();
  }
});

test('a reset learned from the reply of a rejoin: the client was away while attempt 2 started over', async () => {
  const proxy = await startProxy(t.url);
  const tw = createClient({
    url: proxy.url,
    token,
    socketOptions: { reconnectAfterMs: () => 50, rejoinAfterMs: () => 50 },
  });
  try {
    const task = await tw.submit({ type: 'gated-writer' });
    const reading = consume(task.output());
    await waitFor(() => task.text === 'void ', 'the first chunk', 10_000);
    proxy.setDown(true);
    proxy.drop();
    await waitFor(() => !tw.socket?.isConnected(), 'the client to notice');
    await waitFor(() => gates.get(task.id), 'attempt 1 to wait');
    gates.get(task.id)!();
    await t.waitForStatus(token, task.id, ['completed']);
    proxy.setDown(false);
    const { items, shown } = await reading;
    assert.equal(shown, 'kept text');
    assert.deepEqual(items, [
      { kind: 'chunk', index: 0, data: 'void ', attempt: 1 },
      { kind: 'reset', start: 1, attempt: 2 },
      { kind: 'chunk', index: 1, data: 'kept ', attempt: 2 },
      { kind: 'chunk', index: 2, data: 'text', attempt: 2 },
    ]);
    assert.equal(task.status, 'completed');
  } finally {
    tw.close();
    await proxy.close();
  }
});
