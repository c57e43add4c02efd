// The dashboard under load in headless Chromium (issue 11: "1,000 tasks × 10 steps running: the
// table stays responsive"). Its frame times are wall-clock figures, so this file runs alone, after
// the parallel suite (`npm run test:serial`): beside other test files on two cores, a starved
// renderer measures the machine, not the page. The page's own cost is also asserted in CPU time
// (the renderer's main thread, from the DevTools protocol), which a busy machine does not inflate.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { builtDashboard, launch, noBrowser, signIn } from './support.ts';

let built: Awaited<ReturnType<typeof builtDashboard>>;
let t: TestServer;
let browser: Browser;
let root: string;

before(async () => {
  if (noBrowser) return;
  built = await builtDashboard();
  t = await startTestServer({
    dashboardDir: built.dir,
    config: { statsIntervalMs: 300, concurrency: 300, dbPoolSize: 10 },
  });
  root = await t.server.tokens.mint('root', 3600, { admin: true });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await t?.stop();
  await built?.remove();
});

test('1,000 tasks × 10 steps running: the table stays responsive (frame times and main-thread CPU measured in the page)', {
  skip: noBrowser,
}, async () => {
  const { page, errors } = await signIn(browser, t.url, root);
  const load = await t.token('load');
  const base = (await t.api(root, 'GET', '/api/stats?all=true')).body.counts.completed;
  // The renderer's counters: ThreadTime is its main thread's CPU time, LayoutCount its layouts.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async (): Promise<Record<string, number>> => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  };
  const atStart = await metrics();
  // Frame intervals and long tasks, measured by the page itself.
  await page.evaluate(() => {
    const w = window as any;
    w.frames = [];
    w.longTasks = [];
    w.framesFrom = performance.now();
    let last = w.framesFrom;
    const tick = (now: number) => {
      w.frames.push(now - last);
      last = now;
      if (!w.stopFrames) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.longTasks.push(e.duration);
    }).observe({ type: 'longtask', buffered: false });
  });
  const N = 1000;
  const created: string[] = [];
  for (let i = 0; i < N; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, N - i) }, () => t.createTask(load, { steps: 10, interval_ms: 100 })),
    );
    created.push(...batch.map((x) => x.task_id));
  }
  // Virtualised: however many rows there are, only the visible ones (and a few more) are elements.
  const rendered = { max: 0, shown: 0 };
  const sample = setInterval(() => {
    void page
      .evaluate(() => [
        document.querySelectorAll('[data-task-id]').length,
        Number(document.querySelector('.tasks h2 .muted')?.textContent?.replace(/\D/g, '')),
      ])
      .then(
        ([n, shown]) => {
          rendered.max = Math.max(rendered.max, n);
          rendered.shown = Math.max(rendered.shown, shown);
        },
        () => {},
      );
  }, 250);
  // Mid-run, the page answers: a filter typed in shows its result within a bound.
  const typed = await page.evaluate(async () => {
    const input = document.querySelector('[data-filter="text"]') as HTMLInputElement;
    const started = performance.now();
    input.value = 'load';
    input.dispatchEvent(new Event('input', { bubbles: true }));
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const ok = [...document.querySelectorAll('[data-task-id] .c-owner')].every(
      (e) => e.textContent === 'load',
    );
    return { ms: performance.now() - started, ok };
  });
  assert.ok(typed.ok, 'the filter applied');
  await waitFor(
    async () =>
      (await t.api(root, 'GET', '/api/stats?all=true').catch(() => null))?.body.counts.completed >= base + N,
    'every task completed',
    120_000,
    250,
  );
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-stat="completed"]')?.textContent) >= n,
    base + N,
    { timeout: 20_000 },
  );
  await page.waitForFunction(
    (n) =>
      document.querySelectorAll('[data-status="completed"]').length > 0 &&
      Number(document.querySelector('.tasks h2 .muted')?.textContent?.replace(/\D/g, '')) >= n,
    N,
  );
  clearInterval(sample);
  assert.ok(rendered.shown >= N, `the table held every task: ${rendered.shown}`);
  const measured = await page.evaluate(() => {
    const w = window as any;
    w.stopFrames = true;
    const intervals = (w.frames as number[]).slice(1);
    const frames = [...intervals].sort((a, b) => a - b);
    const q = (p: number) => frames[Math.min(frames.length - 1, Math.floor(frames.length * p))];
    return {
      count: frames.length,
      drawn: intervals.reduce((a, b) => a + b, 0),
      elapsed: performance.now() - w.framesFrom,
      p50: q(0.5),
      p95: q(0.95),
      max: frames[frames.length - 1],
      longTasks: w.longTasks,
    };
  });
  const atEnd = await metrics();
  const cpuMs = (atEnd.ThreadTime - atStart.ThreadTime) * 1000;
  const layouts = atEnd.LayoutCount - atStart.LayoutCount;
  console.log(
    `1,000 tasks × 10 steps: ${measured.count} frames over ${(measured.elapsed / 1000).toFixed(1)} s, p50 ${measured.p50.toFixed(1)} ms, p95 ${measured.p95.toFixed(1)} ms, max ${measured.max.toFixed(0)} ms; ${measured.longTasks.length} long tasks (max ${Math.max(0, ...measured.longTasks).toFixed(0)} ms); main thread ${cpuMs.toFixed(0)} CPU-ms (${(cpuMs / N).toFixed(2)} per task), ${layouts} layouts; filter applied in ${typed.ms.toFixed(0)} ms`,
  );
  // Frames were drawn until the end, not only at the start: the loop's intervals cover the run.
  assert.ok(measured.count >= 20, `frames were drawn: ${measured.count}`);
  assert.ok(
    measured.drawn >= 0.9 * measured.elapsed,
    `frames were drawn throughout: ${measured.drawn.toFixed(0)} of ${measured.elapsed.toFixed(0)} ms`,
  );
  // Bounds with room for a 2-core machine (the server runs the 1,000 tasks on it too): most
  // frames on time, none stalled for seconds. Rendering every row, or once per event, breaks them
  // (a store that told its listeners of every event instead of once per frame: p50 100 ms).
  assert.ok(measured.p50 <= 50, `median frame time ${measured.p50} ms`);
  assert.ok(measured.p95 < 250, `p95 frame time ${measured.p95} ms`);
  assert.ok(measured.max < 2000, `longest frame ${measured.max} ms`);
  // The page's own work in CPU time, which a busy machine does not inflate: ~13 events per task
  // are folded in and drawn once per frame, 2-3 CPU-ms per task here (that per-event store: 6.2).
  assert.ok(cpuMs / N < 8, `main-thread CPU per task: ${(cpuMs / N).toFixed(2)} ms`);
  assert.ok(layouts <= measured.count + 10, `at most one layout per frame: ${layouts} for ${measured.count}`);
  assert.ok(typed.ms < 1000, `filter answered in ${typed.ms} ms`);
  assert.ok(
    rendered.max < 120,
    `at most the visible rows are in the DOM: ${rendered.max} of ${rendered.shown}`,
  );
  // Every row of the run is in the table and shows its end.
  const ends = await page.evaluate(async (ids) => {
    const input = document.querySelector('[data-filter="text"]') as HTMLInputElement;
    input.value = ids[0];
    input.dispatchEvent(new Event('input', { bubbles: true }));
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return [...document.querySelectorAll('[data-task-id]')].map((r) => [
      r.getAttribute('data-task-id'),
      r.getAttribute('data-status'),
      r.querySelector('[data-progress]')?.getAttribute('data-progress'),
    ]);
  }, created);
  assert.deepEqual(ends, [[created[0], 'completed', '1']]);
  assert.deepEqual(errors, []);
  await page.close();
});
