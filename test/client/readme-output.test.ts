// The README's phoenix.js example for streamed output, run as it is written (taken out of
// README.md), against a real server: through cuts of the network it shows generate's exact text
// and ends; after a retry that starts over it shows only the new attempt's text.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Socket as PhoenixSocket, Socket } from 'phoenix';
import { generatedText } from '../../src/tasks/index.ts';
import { gatedOutputTask } from '../helpers/gated-output.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');

/** The js block of the README that defines streamOutput, made runnable with the given globals. */
function readmeExample(): (socketUrl: string, token: string, id: string) => Example {
  const blocks = [...readFileSync(README, 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  const block = blocks.find((b) => b.includes('function streamOutput('));
  assert.ok(block, 'the README has the phoenix.js output example');
  const body = block
    .replace("import { Socket } from 'phoenix';", '')
    .replace("new Socket('/socket',", 'new Socket(SOCKET_URL,');
  assert.ok(body.includes('new Socket(SOCKET_URL,'), 'the example opens a socket on /socket');
  return (socketUrl, token, id) => {
    const shown: string[] = [];
    let ended = false;
    const run = new Function(
      'Socket',
      'SOCKET_URL',
      'currentToken',
      'render',
      'id',
      'console',
      `${body}\nreturn socket;`,
    );
    const socket = run(
      Socket,
      socketUrl,
      () => token,
      (text: string) => shown.push(text),
      id,
      {
        log: (what: string) => {
          if (what === 'done') ended = true;
        },
      },
    ) as PhoenixSocket;
    return {
      text: () => shown.at(-1) ?? '',
      shown,
      ended: () => ended,
      socket,
    };
  };
}

interface Example {
  text(): string;
  shown: string[];
  ended(): boolean;
  socket: PhoenixSocket;
}

const { task: gated, gates } = gatedOutputTask('gated-readme');

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ tasks: [gated], config: { outputFlushMs: 20 } });
  token = await t.token('alice');
});
after(() => t.stop());

test("the README's phoenix.js example assembles generate's exact text through network cuts, then ends", async () => {
  const proxy = await startProxy(t.url);
  const prompt = 'the example in the readme must really work';
  const tokens = 400;
  const task = await t.createTask(token, { type: 'generate', prompt, tokens, interval_ms: 5 });
  const expected = generatedText(prompt, tokens);
  const example = readmeExample()(`${proxy.url.replace(/^http/, 'ws')}/socket`, token, task.task_id);
  try {
    for (const share of [0.25, 0.6]) {
      await waitFor(() => example.text().length >= expected.length * share, `${share * 100}%`, 60_000);
      proxy.drop();
    }
    await waitFor(() => example.ended(), 'onEnd', 60_000);
    assert.equal(example.text(), expected);
    for (const s of example.shown) assert.ok(expected.startsWith(s), 'never anything twice or out of order');
  } finally {
    example.socket.disconnect();
    await proxy.close();
  }
});

test("the README's phoenix.js example clears on a retry that starts over and ends with the new text", async () => {
  const task = await t.createTask(token, { type: 'gated-readme' });
  const example = readmeExample()(t.wsUrl, token, task.task_id);
  try {
    await waitFor(() => example.text() === 'void ' && gates.get(task.task_id), 'attempt 1', 30_000);
    gates.get(task.task_id)!();
    await waitFor(() => example.ended(), 'onEnd', 30_000);
    assert.equal(example.text(), 'kept text');
    assert.ok(example.shown.includes(''), 'the text was cleared');
  } finally {
    example.socket.disconnect();
  }
});
