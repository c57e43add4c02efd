// A new user's first `npx taskwire ...` in a clone, with the machine's own npm and Node (20 here):
// its output is taskwire's alone. On a first run (an empty npx cache) npx installs the clone into
// its cache and checks its `engines`; the clone claimed Node >= 22.18 (the published package's
// floor) and npm warned EBADENGINE twice, although the CLI runs itself on the Node 24 npm
// installed. The clone now claims ">=20"; `npm pack` writes ">=22.18" for the tarball.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TEST_SECRET } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** PATH without this project's node_modules/.bin: the machine's own node, npm and npx. */
const machinePath = (process.env.PATH ?? '')
  .split(path.delimiter)
  .filter((d) => d && !d.includes('node_modules'))
  .join(path.delimiter);

const npx = (() => {
  try {
    return execFileSync('bash', ['-c', 'command -v npx'], {
      env: { PATH: machinePath },
      encoding: 'utf8',
    }).trim();
  } catch {
    return '';
  }
})();
const machineNode = npx
  ? execFileSync('node', ['--version'], { env: { PATH: machinePath }, encoding: 'utf8' }).trim()
  : '';

/**
 * An npm cache with no npx installs in it: the state of a first run (npx keeps its installs in
 * `_npx`). Its package data is the machine's own cache (`_cacache`), so the run works offline.
 */
let cache: string;
let offline = false;
before(async () => {
  cache = await mkdtemp(path.join(os.tmpdir(), 'taskwire-npx-'));
  const shared = path.join(process.env.npm_config_cache ?? path.join(os.homedir(), '.npm'), '_cacache');
  if (existsSync(shared)) {
    await symlink(shared, path.join(cache, '_cacache'));
    offline = true;
  }
});
after(() => rm(cache, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {
      PATH: machinePath,
      HOME: process.env.HOME,
      npm_config_cache: cache,
      npm_config_prefer_offline: 'true',
      ...(offline ? { npm_config_offline: 'true' } : {}),
      npm_config_update_notifier: 'false',
      TASKWIRE_SECRET: TEST_SECRET,
    };
    execFile(
      npx,
      ['--no-install', 'taskwire', ...args],
      { cwd: ROOT, env, timeout: 180_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

test(`the first npx taskwire with the machine's npm (Node ${machineNode || '?'}) prints no npm warning`, {
  skip: npx ? false : 'no npx outside node_modules on this machine',
  timeout: 400_000,
}, async () => {
  const token = await run(['token', '--user', 'first-run']);
  assert.equal(token.code, 0, token.stderr);
  assert.match(token.stdout, /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/, 'the token, and nothing else');
  assert.equal(token.stderr, '', 'nothing on stderr: no npm warn EBADENGINE (or any other)');
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: taskwire/);
  assert.doesNotMatch(help.stderr, /npm (warn|WARN|error|ERR)/);
});
