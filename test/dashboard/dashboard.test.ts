// The web dashboard in headless Chromium, against a real server (issue 11's browser tests): sign
// in by the fragment link, watch tasks POSTed over the API appear and finish, filter, open one and
// cancel (and retry) it from the page, every value escaped, a non-admin kept to its own tasks, a
// lost socket shown and caught up on, and screenshots for people (the page under 1,000 tasks is
// load.serial.ts, run alone). The server only lets https://app.example.com use it from another
// origin (TASKWIRE_ALLOWED_ORIGINS): the dashboard, served by the server itself, works all the same.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { defineTask, generatedText, sleep } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { builtDashboard, launch, noBrowser, openPage, screenshot, signIn } from './support.ts';

/** Two more task types, so that the overview has something to compare. */
const resize = defineTask({
  name: 'resize',
  async run(ctx) {
    for (let i = 1; i <= 4; i++) {
      await sleep(40 + Math.random() * 60, ctx.signal);
      ctx.progress(i / 4, `tile ${i} of 4`);
    }
    return { ok: true };
  },
});
const email = defineTask({
  name: 'email',
  async run(ctx) {
    await sleep(10 + Math.random() * 20, ctx.signal);
    ctx.progress(1, 'sent');
    return { sent: 1 };
  },
});

let built: Awaited<ReturnType<typeof builtDashboard>>;
let t: TestServer;
let browser: Browser;
let proxy: TcpProxy;
let root: string;
let alice: string;
let bob: string;

before(async () => {
  if (noBrowser) return;
  built = await builtDashboard();
  t = await startTestServer({
    dashboardDir: built.dir,
    tasks: [resize, email],
    config: {
      allowedOrigins: ['https://app.example.com'],
      statsIntervalMs: 300,
      concurrency: 300,
      dbPoolSize: 10,
    },
  });
  proxy = await startTcpProxy('127.0.0.1', t.server.port);
  root = await t.server.tokens.mint('root', 3600, { admin: true });
  alice = await t.token('alice');
  bob = await t.token('bob');
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await proxy?.close();
  await t?.stop();
  await built?.remove();
});

/** Opens the dashboard signed in with `token` (through the fragment link) and waits for it to be live. */
const signedIn = (token: string, origin = t.url) => signIn(browser, origin, token);

const row = (page: Page, id: string) => page.locator(`[data-task-id="${id}"]`);

test('the fragment link signs in and lands on the overview counts above the task table; the token survives hash routing and a reload, and is never sent in a URL', {
  skip: noBrowser,
}, async () => {
  const { page, errors } = await openPage(browser);
  const urls: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  await page.goto(`${t.url}/dashboard#token=${root}`);
  await page.waitForSelector('[data-connection="live"]');
  for (const status of ['queued', 'running', 'completed', 'failed', 'cancelled'])
    await page.waitForFunction(
      (s) => /^\d+$/.test(document.querySelector(`[data-stat="${s}"]`)?.textContent ?? ''),
      status,
    );
  assert.equal(await page.evaluate(() => location.hash), '#/', 'the token left the address bar');
  const overview = (await page.locator('section.overview').boundingBox())!;
  const table = (await page.locator('section.tasks').boundingBox())!;
  assert.ok(overview.y < table.y, 'the overview counts sit above the task table');

  const task = await t.createTask(alice, { steps: 1, interval_ms: 0 });
  await row(page, task.task_id).waitFor();
  await page.evaluate((id) => {
    location.hash = `#/tasks/${id}`;
  }, task.task_id);
  await page.waitForSelector(`[data-task-page="${task.task_id}"]`);
  await page.reload();
  await page.waitForSelector(`[data-task-page="${task.task_id}"] [data-field="status"]`);
  await page.waitForSelector('[data-connection="live"]');
  assert.equal(await page.locator('[data-action="sign-in"]').count(), 0, 'still signed in after a reload');
  await page.goBack();
  await page.waitForSelector('section.tasks');
  assert.deepEqual(
    urls.filter((u) => u.includes(root)),
    [],
    'the token never appears in a requested URL (it travels in the Authorization header and the socket params)',
  );
  assert.deepEqual(errors, []);
  await page.close();
});

test('tasks POSTed over the API appear live, their bars reach 100 %, a status filter shows only its tasks, and a task cancelled from its page is cancelled in the API', {
  skip: noBrowser,
}, async () => {
  const { page, errors } = await signedIn(root);
  const quick = await Promise.all([1, 2, 3].map(() => t.createTask(alice, { steps: 4, interval_ms: 150 })));
  const long = await t.createTask(bob, { steps: 200, interval_ms: 100, message: 'crunching' });
  const others = await Promise.all([
    ...[1, 2, 3, 4].map(() => t.createTask(alice, { type: 'resize' })),
    ...[1, 2, 3, 4, 5, 6].map(() => t.createTask(bob, { type: 'email' })),
    t.createTask(bob, { steps: 2, interval_ms: 10, fail_at_step: 2, max_attempts: 1 }),
  ]);

  for (const task of [...quick, long, ...others]) await row(page, task.task_id).waitFor();
  // Live: the long task's bar is seen part-way and moving on, with no reload.
  const progressOf = (id: string) =>
    page.evaluate(
      (i) =>
        Number(
          document.querySelector(`[data-task-id="${i}"] [data-progress]`)?.getAttribute('data-progress'),
        ),
      id,
    );
  await page.waitForFunction(
    (id) =>
      Number(
        document.querySelector(`[data-task-id="${id}"] [data-progress]`)?.getAttribute('data-progress'),
      ) > 0,
    long.task_id,
  );
  const seen = await progressOf(long.task_id);
  await page.waitForFunction(
    ([id, p]) =>
      Number(
        document.querySelector(`[data-task-id="${id}"] [data-progress]`)?.getAttribute('data-progress'),
      ) > p,
    [long.task_id, seen] as const,
  );
  assert.ok(seen > 0 && seen < 1, `part-way: ${seen}`);
  for (const task of quick) {
    await page.waitForSelector(
      `[data-task-id="${task.task_id}"][data-status="completed"] [data-progress="1"]`,
    );
  }
  await page.waitForSelector(`[data-task-id="${long.task_id}"][data-status="running"]`);
  const owner = await row(page, long.task_id).locator('.c-owner').textContent();
  assert.equal(owner, 'bob', 'an admin sees every user’s tasks, with owners');

  // Filter by status: only running tasks remain.
  await page.selectOption('[data-filter="status"]', 'running');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-task-id]')];
    return rows.length > 0 && rows.every((r) => r.getAttribute('data-status') === 'running');
  });
  assert.equal(await row(page, long.task_id).count(), 1);
  assert.equal(await row(page, quick[0].task_id).count(), 0);
  await page.selectOption('[data-filter="status"]', '');
  await page.waitForSelector(`[data-task-id="${quick[0].task_id}"]`);
  await screenshot(page, 'table');

  // The admin's overview counts every user's tasks: once the short ones have all ended (the
  // completed count alone can pass 13 earlier, with other tests' tasks), only the long one runs.
  await page.waitForFunction(
    () =>
      Number(document.querySelector('[data-stat="completed"]')?.textContent) >= 3 + 4 + 6 &&
      Number(document.querySelector('[data-stat="running"]')?.textContent) === 1,
  );
  assert.equal(await page.textContent('[data-stat="running"]').then(Number), 1);

  // Open the long task, cancel it from the page (confirmed in the page), see it cancelled in the API.
  await row(page, long.task_id).locator('.c-id a').click();
  await page.waitForSelector(`[data-task-page="${long.task_id}"]`);
  assert.equal(await page.evaluate(() => location.hash), `#/tasks/${long.task_id}`);
  await page.waitForFunction(
    () => document.querySelector('[data-field="message"]')?.textContent === 'crunching',
  );
  await screenshot(page, 'task');
  await page.click('[data-action="cancel"]');
  assert.equal(
    (await t.api(bob, 'GET', `/api/tasks/${long.task_id}`)).body.status,
    'running',
    'not before confirming',
  );
  await page.click('[data-action="confirm"]');
  assert.equal((await t.waitForStatus(bob, long.task_id, ['cancelled'])).status, 'cancelled');
  await page.waitForSelector('[data-field="status"]:text("cancelled")');
  await page.waitForSelector('[data-field="events"] [data-event="cancelled"]');
  assert.equal(await page.locator('[data-action="cancel"]').count(), 0, 'no cancel for a finished task');
  await page.goBack();
  await page.waitForSelector(`[data-task-id="${long.task_id}"][data-status="cancelled"]`);
  await page.waitForFunction(
    () => Number(document.querySelector('[data-stat="cancelled"]')?.textContent) >= 1,
  );
  await page.waitForFunction(() => Number(document.querySelector('[data-stat="failed"]')?.textContent) >= 1);
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, 'overview');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a failed task is retried from its page', { skip: noBrowser }, async (ctx) => {
  const probe = await t.api(alice, 'POST', '/api/tasks/00000000-0000-7000-8000-000000000000/retry');
  if (probe.status === 404 && String(probe.body?.error?.message).startsWith('no route')) {
    ctx.todo('POST /api/tasks/:id/retry is not on this branch yet (the fair-scheduling issue builds it)');
    return;
  }
  const { page } = await signedIn(alice);
  const failed = await t.createTask(alice, { steps: 2, interval_ms: 10, fail_at_step: 1, max_attempts: 1 });
  await t.waitForStatus(alice, failed.task_id, ['failed']);
  await page.evaluate((id) => {
    location.hash = `#/tasks/${id}`;
  }, failed.task_id);
  await page.click('[data-action="retry"]');
  await page.click('[data-action="confirm"]');
  await page.waitForSelector('[data-field="events"] [data-event="retried"]');
  const after = (await t.api(alice, 'GET', `/api/tasks/${failed.task_id}`)).body;
  assert.ok(after.attempt >= 2 || after.status !== 'failed', JSON.stringify(after));
  await page.close();
});

test("a task's streamed output shows on its page live, to the end, as text (an admin reading another user's task)", {
  skip: noBrowser,
}, async () => {
  const { page, dialogs, errors } = await signedIn(root);
  const prompt = 'tokens <b>stream</b> <img src=x onerror=alert(2)> here';
  const task = await t.createTask(alice, { type: 'generate', prompt, tokens: 40, interval_ms: 40 });
  await page.evaluate((id) => {
    location.hash = `#/tasks/${id}`;
  }, task.task_id);
  // Part of it while it runs, then all of it, exactly.
  await page.waitForFunction(
    () => (document.querySelector('[data-field="output"]')?.textContent ?? '').length > 0,
  );
  const expected = generatedText(prompt, 40);
  await page.waitForFunction(
    (text) => document.querySelector('[data-field="output"]')?.textContent === text,
    expected,
  );
  await page.waitForSelector('[data-field="status"]:text("completed")');
  await page.waitForSelector('[data-field="events"] [data-event="completed"]');
  await screenshot(page, 'task-output');
  assert.equal(await page.locator('[data-field="output"] b, [data-field="output"] img').count(), 0);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(errors, []);
  await page.close();
});

test('every value is escaped: a message of <img src=x onerror=alert(1)> renders as text', {
  skip: noBrowser,
}, async () => {
  const { page, dialogs, errors } = await signedIn(root);
  const evil = '<img src=x onerror=alert(1)>';
  const task = await t.createTask(alice, { steps: 2, interval_ms: 50, message: evil, [evil]: evil });
  await page.waitForSelector(`[data-task-id="${task.task_id}"][data-status="completed"]`);
  assert.equal(await row(page, task.task_id).locator('.c-message').textContent(), evil);
  await row(page, task.task_id).locator('.c-id a').click();
  await page.waitForFunction(
    (m) => document.querySelector('[data-field="message"]')?.textContent === m,
    evil,
  );
  assert.match((await page.textContent('[data-field="input"]')) ?? '', /<img src=x onerror=alert\(1\)>/);
  assert.equal(await page.locator('img').count(), 0, 'no img element was made of it');
  assert.deepEqual(dialogs, [], 'no script ran');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a non-admin sees only its own tasks and counts, gets 403 on admin routes and unauthorized on admin:tasks', {
  skip: noBrowser,
}, async () => {
  const own = await t.createTask(alice, { steps: 1, interval_ms: 0 });
  const foreign = await t.createTask(bob, { steps: 1, interval_ms: 0 });
  await t.waitForStatus(bob, foreign.task_id, ['completed']);
  const { page } = await signedIn(alice);
  await row(page, own.task_id).waitFor();
  const ids = await page.$$eval('[data-task-id]', (rows) => rows.map((r) => r.getAttribute('data-task-id')));
  assert.ok(!ids.includes(foreign.task_id), 'bob’s task is not shown to alice');
  assert.equal(await page.locator('[data-filter="owner"]').count(), 0, 'no owner filter for a user');
  // Her counts are her own (the API's figures for her), not everyone's.
  const mine = (await t.api(alice, 'GET', '/api/stats')).body.counts.completed;
  const all = (await t.api(root, 'GET', '/api/stats?all=true')).body.counts.completed;
  assert.ok(mine < all);
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-stat="completed"]')?.textContent) === n,
    mine,
  );

  const refused = await page.evaluate(async (token) => {
    const statuses = [];
    for (const path of ['/api/tasks?all=true', '/api/tasks?owner=bob', '/api/stats?all=true']) {
      const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
      statuses.push([res.status, (await res.json()).error.code]);
    }
    const join = await new Promise((resolve, reject) => {
      const ws = new WebSocket(
        `${location.origin.replace('http', 'ws')}/socket/websocket?vsn=2.0.0&token=${token}`,
      );
      ws.onopen = () => ws.send(JSON.stringify(['1', '1', 'admin:tasks', 'phx_join', {}]));
      ws.onmessage = (m) => {
        resolve(JSON.parse(m.data)[4]);
        ws.close();
      };
      ws.onerror = () => reject(new Error('socket refused'));
    });
    return { statuses, join };
  }, alice);
  assert.deepEqual(refused.statuses, [
    [403, 'forbidden'],
    [403, 'forbidden'],
    [403, 'forbidden'],
  ]);
  assert.deepEqual(refused.join, { status: 'error', response: { reason: 'unauthorized' } });
  await page.close();
});

test('the table pages back through history with the keyset cursor as it scrolls, and sorts by a column', {
  skip: noBrowser,
}, async () => {
  const pager = await t.token('pager');
  const ids: string[] = [];
  for (let i = 0; i < 130; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: 10 }, (_x, j) =>
        t.createTask(pager, { steps: 1, interval_ms: 0, message: `n${i + j}` }),
      ),
    );
    ids.push(...batch.map((x) => x.task_id));
  }
  await waitFor(
    async () => (await t.api(pager, 'GET', '/api/stats')).body.counts.completed === 130,
    'all 130 completed',
    30_000,
    100,
  );
  const { page } = await signedIn(pager);
  const shown = () =>
    page.evaluate(() => Number(document.querySelector('.tasks h2 .muted')?.textContent?.replace(/\D/g, '')));
  await page.waitForFunction(() => document.querySelectorAll('[data-task-id]').length > 0);
  assert.equal(await shown(), 100, 'the first page: 100 newest');
  // Scrolling to the end reads the next page.
  await page.evaluate(() => {
    const body = document.querySelector('[data-rows]')!;
    body.scrollTop = body.scrollHeight;
  });
  await page.waitForFunction(
    () => Number(document.querySelector('.tasks h2 .muted')?.textContent?.replace(/\D/g, '')) === 130,
  );
  await page.waitForFunction(() =>
    document.querySelector('.table-foot')?.textContent?.includes('all of history loaded'),
  );
  // Oldest first, by clicking the age column (newest first is the default).
  await page.click('[data-sort="inserted"]');
  await page.evaluate(() => {
    document.querySelector('[data-rows]')!.scrollTop = 0;
  });
  await page.waitForFunction(
    (first) => document.querySelector('[data-task-id]')?.getAttribute('data-task-id') === first,
    ids[0],
  );
  await page.close();
});

test('a lost socket shows "reconnecting", and on rejoin the table catches up with what happened meanwhile', {
  skip: noBrowser,
}, async () => {
  const { page } = await signedIn(alice, `http://127.0.0.1:${proxy.port}`);
  const before = await t.createTask(alice, { steps: 30, interval_ms: 100 });
  await page.waitForSelector(`[data-task-id="${before.task_id}"][data-status="running"]`);
  proxy.cut();
  try {
    await page.waitForSelector('[data-connection="reconnecting"]');
    assert.match((await page.textContent('[data-connection]')) ?? '', /reconnecting/);
    // While the page is away: a new task runs to its end, and the running one is cancelled.
    const during = await t.createTask(alice, { steps: 2, interval_ms: 20 });
    await t.waitForStatus(alice, during.task_id, ['completed']);
    await t.api(alice, 'POST', `/api/tasks/${before.task_id}/cancel`);
    await t.waitForStatus(alice, before.task_id, ['cancelled']);
    assert.equal(await row(page, during.task_id).count(), 0, 'nothing arrives while the socket is down');
    proxy.restore();
    await page.waitForSelector('[data-connection="live"]', { timeout: 20_000 });
    await page.waitForSelector(`[data-task-id="${during.task_id}"][data-status="completed"]`);
    await page.waitForSelector(`[data-task-id="${before.task_id}"][data-status="cancelled"]`);
  } finally {
    proxy.restore();
    await page.close();
  }
});
