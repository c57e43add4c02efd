// `taskwire watch <id> --output` and `submit ... --output` against a real server: stdout carries
// the streamed text exactly (through cuts of the network between the CLI and the server: nothing
// printed twice, nothing skipped), --json gives NDJSON output lines, a retry that starts over is
// told on stderr, a failure exits 1.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generatedText } from '../../src/tasks/index.ts';
import { gatedOutputTask } from '../helpers/gated-output.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/taskwire.js');

const { task: gated, gates } = gatedOutputTask('gated-cli');

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ tasks: [gated], config: { outputFlushMs: 20 } });
  token = await t.token('dev');
});
after(() => t.stop());

interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number>;
}

/** Runs the CLI (stdout a pipe, not a terminal), collecting its output as it comes. */
function cli(args: string[], url = t.url): CliRun {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKWIRE_')) env[k] = v;
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...env, NO_COLOR: '1', TASKWIRE_URL: url, TASKWIRE_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const exit = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`taskwire ${args.join(' ')} did not end; stdout ${out.length} chars, stderr: ${err}`));
    }, 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

test('submit generate --output: stdout is the text, exactly, and nothing else', async () => {
  const prompt = 'print me as I stream';
  const run = cli(['submit', 'generate', `prompt=${prompt}`, 'tokens=60', 'interval_ms=5', '--output']);
  assert.equal(await run.exit, 0, run.stderr());
  assert.equal(run.stdout(), generatedText(prompt, 60));
  assert.equal(run.stderr(), '');
});

test('watch --output through 3 network cuts: the text printed once, exactly', async () => {
  const proxy = await startProxy(t.url);
  try {
    const prompt = 'the terminal loses its network three times';
    const tokens = 500;
    const task = await t.createTask(token, { type: 'generate', prompt, tokens, interval_ms: 10 });
    const expected = generatedText(prompt, tokens);
    const run = cli(['watch', task.task_id, '--output'], proxy.url);
    let cuts = 0;
    for (const share of [0.2, 0.45, 0.7]) {
      await waitFor(
        () => run.stdout().length >= expected.length * share,
        `${share * 100}% of the text`,
        60_000,
      );
      const shown = run.stdout().length;
      if (shown >= expected.length) break;
      proxy.drop();
      cuts += 1;
      await waitFor(() => run.stdout().length > shown, 'the text to go on after the cut', 30_000);
    }
    assert.equal(await run.exit, 0, run.stderr());
    assert.equal(run.stdout(), expected);
    assert.ok(cuts >= 2, `cut ${cuts} times mid-stream`);
  } finally {
    await proxy.close();
  }
});

test('watch --output --json through cuts: NDJSON output lines, each index once, then the end', async () => {
  const proxy = await startProxy(t.url);
  try {
    const prompt = 'machine readable tokens';
    const tokens = 300;
    const task = await t.createTask(token, { type: 'generate', prompt, tokens, interval_ms: 10 });
    const run = cli(['watch', task.task_id, '--output', '--json'], proxy.url);
    for (const n of [60, 150]) {
      await waitFor(() => run.stdout().split('"event":"output"').length > n, `${n} output lines`, 60_000);
      proxy.drop();
    }
    assert.equal(await run.exit, 0, run.stderr());
    const lines = run
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines[0].event, 'state');
    const output = lines.filter((l) => l.event === 'output');
    assert.deepEqual(
      output.map((l) => l.index),
      Array.from({ length: tokens }, (_, i) => i),
    );
    assert.equal(output.map((l) => l.data).join(''), generatedText(prompt, tokens));
    assert.ok(output.every((l) => l.task_id === task.task_id && l.attempt === 1 && !('kind' in l)));
    assert.equal(lines.at(-1).event, 'completed');
  } finally {
    await proxy.close();
  }
});

test('a retry that starts over: told on stderr (an output_reset line with --json); the new text follows', async () => {
  const task = await t.createTask(token, { type: 'gated-cli' });
  const text = cli(['watch', task.task_id, '--output']);
  const json = cli(['watch', task.task_id, '--output', '--json']);
  await waitFor(
    () => text.stdout() === 'void ' && json.stdout().includes('"data":"void "'),
    'attempt 1',
    30_000,
  );
  await waitFor(() => gates.get(task.task_id), 'attempt 1 to wait');
  gates.get(task.task_id)!();
  assert.equal(await text.exit, 0, text.stderr());
  assert.equal(text.stdout(), 'void kept text');
  assert.match(text.stderr(), /attempt 2 starts the output over/);
  assert.equal(await json.exit, 0, json.stderr());
  const events = json
    .stdout()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((l) => l.event.startsWith('output'));
  assert.deepEqual(events, [
    { event: 'output', task_id: task.task_id, index: 0, data: 'void ', attempt: 1 },
    { event: 'output_reset', task_id: task.task_id, start: 1, attempt: 2 },
    { event: 'output', task_id: task.task_id, index: 1, data: 'kept ', attempt: 2 },
    { event: 'output', task_id: task.task_id, index: 2, data: 'text', attempt: 2 },
  ]);
});

test('--output: a failed task exits 1 with its error on stderr; several ids is a usage error', async () => {
  const task = await t.createTask(token, { type: 'gated-cli', max_attempts: 1 });
  const run = cli(['watch', task.task_id, '--output']);
  await waitFor(() => gates.get(task.task_id) && run.stdout() === 'void ', 'attempt 1', 30_000);
  gates.get(task.task_id)!();
  assert.equal(await run.exit, 1);
  assert.equal(run.stdout(), 'void ');
  assert.match(run.stderr(), new RegExp(`${task.task_id} failed: attempt 1 gives up`));
  const two = cli(['watch', task.task_id, task.task_id, '--output']);
  assert.equal(await two.exit, 64);
  assert.match(two.stderr(), /one task at a time/);
});
