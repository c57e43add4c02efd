// The headline case: 10,000 chunks streamed while the subscriber's connection is cut five
// times at random moments (a TCP proxy between the official phoenix client and the server). The
// client rejoins with `{output_from: last + 1}` each time; the text it assembles equals the
// handler's, every chunk exactly once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { generatedText } from '../../src/tasks/index.ts';
import { followOutput } from '../helpers/output-follower.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';

let t: TestServer;
let proxy: TcpProxy;
before(async () => {
  t = await startTestServer({ config: { outputFlushMs: 50 } });
  proxy = await startProxy(t.url);
});
after(async () => {
  await proxy.close();
  await t.stop();
});

test('10,000 chunks through 5 connection cuts at random moments: the exact text, each chunk once', async () => {
  const token = await t.token('alice');
  const prompt = 'every token must arrive exactly once, in order, whatever the network does';
  const tokens = 10_000;
  const task = await t.createTask(token, { type: 'generate', prompt, tokens, interval_ms: 1 });
  const f = followOutput(`${proxy.url.replace(/^http/, 'ws')}/socket`, token, task.task_id);
  try {
    // Cut at random points spread over the stream (by how much has arrived), never twice at once.
    const cuts = Array.from({ length: 5 }, () => Math.floor(Math.random() * tokens * 0.9))
      .sort((a, b) => a - b)
      .map((n, i) => n + i * 50);
    for (const at of cuts) {
      await waitFor(() => f.deliveries.size >= Math.min(at, tokens - 1) || f.done, `${at} chunks`, 60_000);
      if (f.done) break;
      const joinsBefore = f.joins;
      proxy.drop();
      await waitFor(() => f.joins > joinsBefore, 'the client to rejoin', 30_000);
    }
    await f.finished(60_000);
    const text = f.text();
    assert.equal(text.length, generatedText(prompt, tokens).length);
    assert.equal(text, generatedText(prompt, tokens));
    const twice = [...f.deliveries.entries()].filter(([, n]) => n !== 1);
    assert.deepEqual(twice, [], 'no chunk arrived twice');
    assert.equal(f.deliveries.size, tokens);
    assert.equal(f.gaps, 0, 'no chunk arrived past a gap');
    assert.ok(f.joins >= 2, `the client rejoined after the cuts (${f.joins} joins)`);
    console.log(`# ${tokens} chunks, ${f.joins - 1} rejoins after cuts at ${cuts.join(', ')}`);
  } finally {
    f.close();
  }
});
