// useTask (taskwire/react) and task.output() in a real browser: headless Chromium loads a page
// bundled by esbuild from test/react/fixtures/task-page.ts (React 19 in development mode, inside
// StrictMode) from its own origin, against a real server. The page follows a `generate` task; it
// is reloaded mid-stream, or its connections are cut, and the text it shows must end complete and
// exact (generatedText), never showing anything that is not a prefix of it on the way.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { generatedText } from '../../src/tasks/index.ts';
import { bundle, launchChromium, noBrowser, type StaticSite, serveApp } from '../helpers/chromium.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/task-page.ts');

let browser: Browser;
let site: StaticSite;
let t: TestServer;
let token: string;

before(async () => {
  if (noBrowser) return;
  site = await serveApp(await bundle(FIXTURE));
  // Only the page's origin may call the API and open sockets (CORS and the origin check).
  t = await startTestServer({ config: { allowedOrigins: [site.origin], outputFlushMs: 20 } });
  token = await t.token('alice');
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all([t?.stop(), site?.close()]);
});

/** Opens the page on a task; collects errors the page reports (React's warnings included). */
async function openTask(api: string, taskId: string, expected: string) {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A cut connection is logged by Chromium itself; anything else is the page's fault.
    if (msg.type() === 'error' && !/WebSocket|net::ERR|Failed to load resource/.test(msg.text()))
      errors.push(msg.text());
  });
  const hash = new URLSearchParams({ api, token, task: taskId, expect: expected });
  await page.goto(`${site.origin}/#${hash}`);
  return { page, errors };
}

const text = (page: Page, id: string) => page.$eval(`#${id}`, (e) => e.textContent ?? '');

function waitForLength(page: Page, n: number, timeout = 30_000) {
  return page.waitForFunction((n) => (document.getElementById('output')?.textContent ?? '').length >= n, n, {
    timeout,
  });
}

function waitForOutputDone(page: Page, timeout = 60_000) {
  return page.waitForFunction(
    () => document.getElementById('output-done')?.textContent === 'true',
    undefined,
    {
      timeout,
    },
  );
}

test('useTask in Chromium: a page reloaded mid-stream resumes from the server and shows the exact text', {
  skip: noBrowser,
}, async () => {
  const prompt = 'tokens stream into a page that is reloaded halfway through';
  const tokens = 200;
  const task = await t.createTask(token, { type: 'generate', prompt, tokens, interval_ms: 25 });
  const expected = generatedText(prompt, tokens);
  const { page, errors } = await openTask(t.url, task.task_id, expected);
  try {
    await waitForLength(page, Math.floor(expected.length / 4));
    const shownBefore = await text(page, 'output');
    assert.equal(await text(page, 'status'), 'running', 'reloaded while the task still streams');
    assert.ok(shownBefore.length < expected.length && expected.startsWith(shownBefore));

    await page.reload();
    await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 10_000 });
    await waitForOutputDone(page);
    assert.equal(await text(page, 'output'), expected);
    assert.equal(await text(page, 'status'), 'completed');
    assert.equal(await text(page, 'progress'), '1');
    const { notPrefix, lengths } = await page.evaluate(() => ({
      notPrefix: window.notPrefix,
      lengths: window.lengths,
    }));
    assert.equal(notPrefix, 0, 'every text rendered after the reload was a prefix of the final one');
    assert.equal(lengths.at(-1), expected.length);
    assert.deepEqual(
      [...lengths].sort((a, b) => a - b),
      lengths,
      'the text only grew',
    );
    assert.deepEqual(errors, []);
    // The task ended and its output is in: the page's hook leaves the channel.
    await waitFor(() => t.server.channels.stats().channels === 0, 'the channel to be left');
  } finally {
    await page.close();
  }
});

test('useTask in Chromium through network cuts: the text resumes by index and ends exact', {
  skip: noBrowser,
}, async () => {
  const proxy = await startProxy(t.url);
  const prompt = 'the network drops twice and the page carries on';
  const tokens = 240;
  const task = await t.createTask(token, { type: 'generate', prompt, tokens, interval_ms: 20 });
  const expected = generatedText(prompt, tokens);
  const { page, errors } = await openTask(proxy.url, task.task_id, expected);
  try {
    let cuts = 0;
    for (const share of [0.3, 0.6]) {
      const at = Math.floor(expected.length * share);
      await waitForLength(page, at);
      if ((await text(page, 'output-done')) === 'true') break;
      proxy.drop();
      cuts += 1;
      // Live again: more text than at the cut (by a full word or more).
      await waitForLength(page, (await text(page, 'output')).length + 8);
    }
    await waitForOutputDone(page);
    assert.equal(await text(page, 'output'), expected);
    assert.ok(cuts >= 1, 'cut mid-stream');
    assert.equal(await page.evaluate(() => window.notPrefix), 0, 'nothing shown twice, nothing out of order');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    await proxy.close();
  }
});

test('task.output() in Chromium, over WebSocket and LongPoll: each chunk once, in order, then the end', {
  skip: noBrowser,
}, async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${site.origin}/`);
    await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 10_000 });
    const prompt = 'iterate over the output in a browser';
    for (const longPoll of [false, true]) {
      const run = await page.evaluate(
        async ({ url, token, prompt, longPoll }) => {
          const tw = window.taskwire.createClient({ url, token, longPoll, timeoutMs: 10_000 });
          try {
            const task = await tw.submit({ type: 'generate', prompt, tokens: 30, interval_ms: 5 });
            const indexes: number[] = [];
            let shown = '';
            for await (const item of task.output()) {
              if (item.kind === 'reset') shown = '';
              else {
                indexes.push(item.index);
                shown += item.data as string;
              }
            }
            return { shown, indexes, status: task.status, text: task.text };
          } finally {
            tw.close();
          }
        },
        { url: t.url, token, prompt, longPoll },
      );
      const expected = generatedText(prompt, 30);
      assert.equal(run.shown, expected, longPoll ? 'LongPoll' : 'WebSocket');
      assert.equal(run.text, expected);
      assert.deepEqual(
        run.indexes,
        Array.from({ length: 30 }, (_, i) => i),
      );
      assert.equal(run.status, 'completed');
    }
  } finally {
    await page.close();
  }
});
