// The SDK in a real browser: headless Chromium (Debian's package, driven by playwright-core)
// loads a page from another origin, with the SDK bundled for the browser by esbuild, and runs
// tasks against a real server over WebSocket and LongPoll: CORS preflights, the socket's origin
// check, progress, results and typed failures, all as a web app would meet them.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip.
const noBrowser =
  existsSync(CHROMIUM) || process.env.CI ? false : `needs ${CHROMIUM} (apt-get install chromium)`;

/** Serves the page and the bundled SDK on its own origin. */
async function servePage(sdk: string): Promise<{ origin: string; close(): Promise<void> }> {
  const html = `<!doctype html><meta charset="utf-8"><title>taskwire</title>
<script type="module">import * as taskwire from '/sdk.js'; window.taskwire = taskwire; document.title = 'ready';</script>`;
  const server = http.createServer((req, res) => {
    if (req.url === '/sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
    else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let browser: Browser;
let page: Page;
let foreignPage: Page;
let t: TestServer;
let token: string;
let site: Awaited<ReturnType<typeof servePage>>;
let foreign: Awaited<ReturnType<typeof servePage>>;

before(async () => {
  if (noBrowser) return;
  const bundle = await build({
    entryPoints: [path.join(ROOT, 'src/client/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
  });
  const sdk = bundle.outputFiles[0].text;
  [site, foreign] = await Promise.all([servePage(sdk), servePage(sdk)]);
  // Only the site's origin may use the API and open sockets; `foreign` is any other web page.
  t = await startTestServer({ allowedOrigins: [site.origin] });
  token = await t.token('alice');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
    timeout: 30_000,
  });
  const open = async (origin: string) => {
    const p = await browser.newPage();
    await p.goto(`${origin}/`);
    await p.waitForFunction(() => document.title === 'ready', undefined, { timeout: 10_000 });
    return p;
  };
  [page, foreignPage] = await Promise.all([open(site.origin), open(foreign.origin)]);
});

after(async () => {
  await browser?.close();
  await Promise.all([t?.stop(), site?.close(), foreign?.close()]);
});

interface RunResult {
  status: string;
  result?: unknown;
  error?: { name: string; message: string };
  progress: number[];
  seqs: number[];
}

/** Submits a task from the page and follows it to its end, with the SDK as an app would. */
function runInPage(p: Page, body: Record<string, unknown>, longPoll = false): Promise<RunResult> {
  return p.evaluate(
    async ({ url, token, body, longPoll }) => {
      const { createClient } = (window as any).taskwire;
      const tw = createClient({ url, token, longPoll, timeoutMs: 10_000 });
      try {
        const task = await tw.submit(body);
        const progress: number[] = [];
        const seqs: number[] = [];
        task.on('progress', (e: { progress: number; seq: number }) => {
          progress.push(e.progress);
          seqs.push(e.seq);
        });
        try {
          const result = await task.result();
          return { status: task.state.status, result, progress, seqs };
        } catch (err) {
          const e = err as Error;
          return { status: task.state.status, error: { name: e.name, message: e.message }, progress, seqs };
        }
      } finally {
        tw.close();
      }
    },
    { url: t.url, token, body, longPoll },
  );
}

test('in Chromium, over WebSocket: submit, live progress in seq order, result', {
  skip: noBrowser,
}, async () => {
  const run = await runInPage(page, { type: 'demo', steps: 5, interval_ms: 60, message: 'in the browser' });
  assert.equal(run.status, 'completed');
  assert.deepEqual(run.result, { steps: 5 });
  assert.deepEqual(run.progress, [0.2, 0.4, 0.6, 0.8, 1].slice(5 - run.progress.length));
  assert.ok(run.progress.length >= 3, `live progress seen: ${run.progress}`);
  for (let i = 1; i < run.seqs.length; i++) assert.ok(run.seqs[i] > run.seqs[i - 1]);
});

test('in Chromium, over LongPoll: the same flow', { skip: noBrowser }, async () => {
  const run = await runInPage(page, { type: 'demo', steps: 4, interval_ms: 80 }, true);
  assert.equal(run.status, 'completed');
  assert.deepEqual(run.result, { steps: 4 });
  assert.ok(run.progress.length >= 2, `live progress seen: ${run.progress}`);
});

test('in Chromium, a failed task rejects result() with TaskFailedError', { skip: noBrowser }, async () => {
  const run = await runInPage(page, {
    type: 'demo',
    steps: 4,
    interval_ms: 20,
    fail_at_step: 2,
    max_attempts: 1,
  });
  assert.equal(run.status, 'failed');
  assert.equal(run.error?.name, 'TaskFailedError');
  assert.match(run.error?.message ?? '', /demo failed at step 2/);
});

test('a page on an origin outside TASKWIRE_ALLOWED_ORIGINS can use neither the API nor the socket', {
  skip: noBrowser,
}, async () => {
  const outcome = await foreignPage.evaluate(
    async ({ url, token }) => {
      const api = await fetch(`${url}/api/tasks`, { headers: { authorization: `Bearer ${token}` } }).then(
        (r) => `answered ${r.status}`,
        (e: Error) => `blocked: ${e.name}`,
      );
      const socket = await new Promise<string>((resolve) => {
        const ws = new WebSocket(`${url.replace('http', 'ws')}/socket/websocket?vsn=2.0.0&token=${token}`);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
      });
      return { api, socket };
    },
    { url: t.url, token },
  );
  assert.deepEqual(outcome, { api: 'blocked: TypeError', socket: 'refused' });
});
