// /dashboard as the server serves it (no browser): the built page at /dashboard itself (so the
// fragment of the printed link stays), its assets under /dashboard/, a strict CSP, no token
// needed to load it; a checkout without a build says how to build; and `taskwire start` prints
// the dashboard link with a short-lived admin token in the fragment, never in a log line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestServer, TEST_SECRET, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { builtDashboard, ROOT } from './support.ts';

let built: Awaited<ReturnType<typeof builtDashboard>>;
let t: TestServer;

before(async () => {
  built = await builtDashboard();
  t = await startTestServer({ dashboardDir: built.dir });
});
after(async () => {
  await t?.stop();
  await built?.remove();
});

test('GET /dashboard is the page, its script and stylesheet are served beside it, under a strict CSP', async () => {
  const page = await fetch(`${t.url}/dashboard`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /default-src 'self'/);
  const html = await page.text();
  assert.match(html, /<script type="module" src="\/dashboard\/app\.js"><\/script>/);
  assert.doesNotMatch(html, /https?:\/\//, 'nothing from another host (no CDN)');
  const js = await fetch(`${t.url}/dashboard/app.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /javascript/);
  assert.ok((await js.text()).length > 10_000);
  const css = await fetch(`${t.url}/dashboard/app.css`);
  assert.equal(css.status, 200);
  assert.equal((await fetch(`${t.url}/dashboard/`)).status, 200);
  const missing = await fetch(`${t.url}/dashboard/nope.js`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, 'not_found');
  assert.equal((await fetch(`${t.url}/dashboard/..%2f..%2fpackage.json`)).status, 404);
});

test('the dashboard is not in the API docs', async () => {
  const spec = await (await fetch(`${t.url}/docs/json`)).json();
  assert.ok(!Object.keys(spec.paths).some((p: string) => p.startsWith('/dashboard')));
});

test('without a build, /dashboard answers 503 saying how to build it', async () => {
  const empty = await mkdtemp(path.join(os.tmpdir(), 'taskwire-nodash-'));
  const other = await startTestServer({ dashboardDir: empty });
  try {
    const res = await fetch(`${other.url}/dashboard`);
    assert.equal(res.status, 503);
    assert.match((await res.json()).error.message, /npm run build/);
  } finally {
    await other.stop();
    await rm(empty, { recursive: true, force: true });
  }
});

test('`taskwire start` prints the dashboard link with an admin token in the fragment, and logs no token', async () => {
  const db = await createTestDatabase();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/taskwire.js'), 'start', '--port', '0'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      TASKWIRE_SECRET: TEST_SECRET,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      TASKWIRE_LOG_PRETTY: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  try {
    const link = await waitFor(
      () => /(http:\/\/\S+\/dashboard)#token=([\w-]+\.[\w-]+\.[\w-]+)/.exec(out),
      'the link',
      60_000,
    );
    const [, page, token] = link;
    assert.ok(!page.includes('?'), 'no query string');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.role, 'admin');
    assert.ok(claims.exp - claims.iat <= 3600, 'short-lived');
    const base = page.replace(/\/dashboard$/, '');
    const stats = await fetch(`${base}/api/stats?all=true`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(stats.status, 200, 'the token is an admin token of this server');
    // From the package's own build (npm install runs it through `prepare`).
    assert.equal(
      (await fetch(page)).status,
      200,
      '/dashboard is served (dist/dashboard built by npm install)',
    );
    const logLines = out.split('\n').filter((l) => l.startsWith('{'));
    assert.ok(logLines.length > 0, 'JSON log lines seen');
    assert.deepEqual(
      logLines.filter((l) => l.includes(token)),
      [],
      'the token is in no log line',
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await db.drop();
  }
});
