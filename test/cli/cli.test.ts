// The CLI against a real server: live bars in a real terminal (tmux), --json output that parses,
// exit codes for every kind of failure, and a dev token from the local secret with no setup.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer, TEST_SECRET, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/taskwire.js');
const noTmux = (() => {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'needs tmux';
  }
})();

let t: TestServer;
let token: string;
let tmp: string;
/**
 * Each terminal run gets its own tmux server (socket inside `tmp`, so that it goes with it): a
 * server whose last session was just killed exits, and a new session sent to it meanwhile
 * fails with "server exited unexpectedly".
 */
const tmuxSockets: string[] = [];
before(async () => {
  t = await startTestServer();
  token = await t.token('dev');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'taskwire-cli-'));
});
after(async () => {
  await t.stop();
  for (const socket of tmuxSockets) {
    try {
      execFileSync('tmux', ['-S', socket, 'kill-server'], { stdio: 'ignore' });
    } catch {
      // no server left: its session already ended
    }
  }
  await rm(tmp, { recursive: true, force: true });
});

/** The environment of a CLI run: none of the test runner's own taskwire settings. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKWIRE_')) env[k] = v;
  return { ...env, NO_COLOR: '1', ...extra };
}

function cli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: opts.cwd ?? ROOT,
        env: cleanEnv({ TASKWIRE_URL: t.url, TASKWIRE_TOKEN: token, ...opts.env }),
        timeout: 20_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A CLI run in a 120x30 tmux pane; `screens` holds every distinct capture until it exits. */
async function inTerminal(args: string[], name: string) {
  const codeFile = path.join(tmp, `${name}.code`);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [
    'env',
    `TASKWIRE_URL=${t.url}`,
    `TASKWIRE_TOKEN=${token}`,
    quote(process.execPath),
    quote(BIN),
    ...args.map(quote),
    `; echo $? > ${quote(codeFile)}; sleep 60`,
  ].join(' ');
  const socket = path.join(tmp, `${name}.tmux`);
  tmuxSockets.push(socket);
  const tmux = (...a: string[]) => execFileSync('tmux', ['-S', socket, ...a], { encoding: 'utf8' });
  tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '30', command);
  const screens: string[] = [];
  try {
    let code: string | undefined;
    const deadline = Date.now() + 20_000;
    while (code === undefined && Date.now() < deadline) {
      const screen = tmux('capture-pane', '-p', '-t', name);
      if (screen.trim() && screen !== screens.at(-1)) screens.push(screen);
      code = await readFile(codeFile, 'utf8').then(
        (s) => s.trim(),
        () => undefined,
      );
      if (code === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    screens.push(tmux('capture-pane', '-p', '-t', name));
    assert.ok(code !== undefined, `the command did not end; last screen:\n${screens.at(-1)}`);
    return { code: Number(code), screens, last: screens.at(-1)! };
  } finally {
    tmux('kill-session', '-t', name);
  }
}

/** The line of task `id` on a screen (tasks show as the last 8 characters of their id). */
function lineOf(screen: string, id: string): string {
  return screen.split('\n').find((l) => l.startsWith(id.slice(-8))) ?? '';
}

/** Every distinct percentage shown on the line of task `id`, in order of the screens. */
function percents(screens: string[], id: string): number[] {
  const seen: number[] = [];
  for (const screen of screens) {
    const m = lineOf(screen, id).match(/\s(\d{1,3})%\s/);
    if (m && Number(m[1]) !== seen.at(-1)) seen.push(Number(m[1]));
  }
  return seen;
}

test('submit --watch in a terminal: the bar moves up to 100% and the exit code is 0', {
  skip: noTmux,
}, async () => {
  const run = await inTerminal(
    ['submit', 'demo', 'steps=8', 'interval_ms=150', 'message=crunching', '--watch'],
    'ok',
  );
  assert.equal(run.code, 0, run.last);
  const id = (run.last.split('\n').find((l) => /\d+%/.test(l)) ?? '').slice(0, 8); // the shown short id
  const shown = percents(run.screens, id);
  assert.ok(shown.length >= 3, `the bar moved: ${shown.join(' → ')}`);
  assert.deepEqual(
    [...shown].sort((a, b) => a - b),
    shown,
    'never backwards',
  );
  assert.equal(shown.at(-1), 100);
  assert.match(lineOf(run.last, id), /█{30} 100%\s+completed\s+crunching/);
  assert.ok(
    run.screens.some((s) => /running\s+ETA \d+s/.test(lineOf(s, id))),
    'an ETA while running',
  );
});

test('watch of several tasks: one bar each, and exit 1 when one fails', { skip: noTmux }, async () => {
  // Long enough that the bar is seen moving even when the CLI takes a second or two to start.
  const good = await t.createTask(token, { steps: 10, interval_ms: 300 });
  const bad = await t.createTask(token, { steps: 6, interval_ms: 100, fail_at_step: 3, max_attempts: 1 });
  const run = await inTerminal(['watch', good.task_id, bad.task_id], 'multi');
  assert.equal(run.code, 1, run.last);
  assert.match(lineOf(run.last, good.task_id), /100%\s+completed/);
  assert.match(lineOf(run.last, bad.task_id), /33%\s+failed\s+demo failed at step 3/);
  assert.ok(percents(run.screens, good.task_id).length >= 2, 'the first bar moved');
});

test('--json: one JSON document per command, NDJSON events for watch', async () => {
  const submitted = await cli([
    'submit',
    'demo',
    '--input',
    '{"steps": 3, "interval_ms": 20}',
    'message="hi"',
    '--json',
  ]);
  assert.equal(submitted.code, 0, submitted.stderr);
  const task = JSON.parse(submitted.stdout);
  assert.equal(task.type, 'demo');
  assert.deepEqual(task.input, { steps: 3, interval_ms: 20, message: 'hi' });

  const watched = await cli(['watch', task.task_id, '--json']);
  assert.equal(watched.code, 0, watched.stderr);
  const lines = watched.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines[0].event, 'state');
  const seqs = lines.map((l) => l.seq ?? l.task.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] >= seqs[i - 1], 'in seq order');
  const last = lines.at(-1);
  assert.equal(last.status ?? last.task.status, 'completed');

  // Steps long enough that the watch has joined before the first one (on a loaded machine the
  // socket and the join take longer than a 30 ms step, and only the final state was seen).
  const live = await cli(['submit', 'demo', 'steps=3', 'interval_ms=700', '--watch', '--json']);
  assert.equal(live.code, 0, live.stderr);
  const events = live.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const progress = events.filter((e) => e.event === 'progress').map((e) => e.progress);
  assert.ok(progress.length >= 1);
  assert.deepEqual(progress, [1 / 3, 2 / 3, 1].slice(3 - progress.length));
  assert.equal(events.at(-1).event, 'completed');
  assert.deepEqual(events.at(-1).result, { steps: 3 });

  const ls = await cli(['ls', '--json', '--limit', '2']);
  assert.equal(ls.code, 0, ls.stderr);
  const page = JSON.parse(ls.stdout);
  assert.equal(page.tasks.length, 2);
  assert.equal(typeof page.next_cursor, 'string');

  const audit = await cli(['events', task.task_id, '--json']);
  assert.equal(audit.code, 0, audit.stderr);
  const trail = JSON.parse(audit.stdout).events.map((e: { event: string }) => e.event);
  assert.equal(trail[0], 'created');
  assert.equal(trail.at(-1), 'completed');

  const running = await t.createTask(token, { steps: 100, interval_ms: 100 });
  const cancelled = await cli(['cancel', running.task_id, '--json']);
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.equal(JSON.parse(cancelled.stdout).task_id, running.task_id);
});

test('submit --priority --delay, and retry', async () => {
  const before = Date.now();
  const delayed = await cli(['submit', 'demo', 'steps=1', '--priority', '-5', '--delay', '2m', '--json']);
  assert.equal(delayed.code, 0, delayed.stderr);
  const task = JSON.parse(delayed.stdout);
  assert.equal(task.priority, -5);
  assert.equal(task.status, 'queued');
  const starts = Date.parse(task.scheduled_at);
  assert.ok(starts >= before + 120_000 && starts <= Date.now() + 120_000, task.scheduled_at);
  assert.deepEqual(task.input, { steps: 1 });
  const plain = await cli(['submit', 'demo', 'steps=1', '--delay', '1500']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /queued \(starts at /);
  const bad = await cli(['submit', 'demo', '--priority', '200']);
  assert.equal(bad.code, 64, 'a priority out of range is a usage error');
  assert.match(bad.stderr, /-100\.\.100/);
  const badDelay = await cli(['submit', 'demo', '--delay', 'soon']);
  assert.equal(badDelay.code, 64);

  // retry: a cancelled task runs again; a queued one is refused (exit 1, conflict).
  const refused = await cli(['retry', task.task_id]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /failed or cancelled/);
  assert.equal((await cli(['cancel', task.task_id])).code, 0);
  const again = await cli(['retry', task.task_id, '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).status, 'queued');
  const watched = await cli(['retry', task.task_id]);
  assert.equal(watched.code, 1, 'a queued task cannot be retried again');
  const failed = await t.createTask(token, { steps: 2, interval_ms: 0, fail_at_step: 1, max_attempts: 1 });
  await t.waitForStatus(token, failed.task_id, ['failed']);
  const rerun = await cli(['retry', failed.task_id]);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.match(rerun.stdout, /queued {2}\(attempt 2 of 2 next\)/);
});

test('exit codes: down 2, bad token 3, not found 4, refused 1, usage 64; a cancelled watch exits 1', async () => {
  const down = await cli(['ls'], { env: { TASKWIRE_URL: 'http://127.0.0.1:9' } });
  assert.equal(down.code, 2);
  assert.match(down.stderr, /^taskwire: cannot reach taskwire at http:\/\/127\.0\.0\.1:9/);
  const badToken = await cli(['ls'], { env: { TASKWIRE_TOKEN: 'nope' } });
  assert.equal(badToken.code, 3);
  assert.match(badToken.stderr, /unauthorized/);
  const missing = await cli(['watch', '00000000-0000-7000-8000-000000000000']);
  assert.equal(missing.code, 4);
  assert.match(missing.stderr, /not found/);
  assert.equal((await cli(['events', 'nope'])).code, 4);
  const invalid = await cli(['submit', 'demo', 'steps=0']);
  assert.equal(invalid.code, 1);
  assert.match(invalid.stderr, /validation_failed.*steps/);
  assert.equal((await cli(['submit'])).code, 64);
  assert.equal((await cli(['frobnicate'])).code, 64);

  const long = await t.createTask(token, { steps: 100, interval_ms: 50 });
  const watching = cli(['watch', long.task_id]);
  await waitFor(
    async () => (await t.api(token, 'GET', `/api/tasks/${long.task_id}`)).body.progress > 0.05,
    'progress',
  );
  await t.api(token, 'POST', `/api/tasks/${long.task_id}/cancel`);
  const watched = await watching;
  assert.equal(watched.code, 1);
  assert.match(watched.stdout, /cancelled/);
});

test('with no token, one is minted from the secret in the data dir (right after npm start)', async () => {
  const cwd = await mkdtemp(path.join(tmp, 'project-'));
  const noSecret = await cli(['ls'], { cwd, env: { TASKWIRE_TOKEN: '' } });
  assert.equal(noSecret.code, 3);
  assert.match(noSecret.stderr, /no token/);
  await mkdir(path.join(cwd, '.taskwire'));
  await writeFile(path.join(cwd, '.taskwire', 'secret'), `${TEST_SECRET}\n`);
  const ok = await cli(['submit', 'demo', 'steps=1', 'interval_ms=0', '--watch'], {
    cwd,
    env: { TASKWIRE_TOKEN: '' },
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /completed 100%/, 'plain lines when stdout is not a terminal');
});
