// The heap release policy: a memory-reducing GC when the resident size grows past its floor by the
// threshold (or by a quarter of it while the event loop is quiet), never while the loop is half
// busy or more, never two within 30 s, backing off while GCs free little, and taking growth three
// GCs could not free for live memory.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { startHeapRelease } from '../../src/server/heap-release.ts';

const MB = 1_048_576;

/**
 * Runs the watch (a look every 5 s) on a scripted resident size in MB with mocked timers; returns
 * when GCs ran (ms). The event loop is busy (utilisation 0.3: serving, not loaded) unless
 * `utilizationAt` says otherwise.
 */
function simulate(
  t: import('node:test').TestContext,
  rssAt: (ms: number, gcs: number[]) => number,
  ms: number,
  utilizationAt: (ms: number) => number = () => 0.3,
) {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_800_000_000_000 });
  const gcs: number[] = [];
  let clock = 0;
  const stop = startHeapRelease({
    thresholdBytes: 40 * MB,
    intervalMs: 5000,
    log: pino({ level: 'silent' }),
    rss: () => rssAt(clock, gcs) * MB,
    collect: () => gcs.push(clock),
    utilization: () => utilizationAt(clock),
  });
  for (clock = 5000; clock <= ms; clock += 5000) t.mock.timers.tick(5000);
  stop();
  t.mock.timers.reset();
  return gcs;
}

test('a burst that leaves freed pages behind: one GC once the growth passes the threshold', (t) => {
  // 200 MB, a burst to 300 MB from 20 s on; a GC gives back everything above 210 MB.
  const gcs = simulate(t, (ms, done) => (done.length > 0 ? 210 : ms >= 20_000 ? 300 : 200), 120_000);
  assert.deepEqual(gcs, [20_000]);
});

test('growth under the threshold never triggers a GC', (t) => {
  assert.deepEqual(simulate(t, () => 230, 300_000).length, 0);
  assert.deepEqual(simulate(t, (ms) => (ms < 10_000 ? 200 : 239), 300_000).length, 0);
});

test('live growth: GCs back off (30 s, then 60 s apart), then the floor rises and they stop', (t) => {
  const gcs = simulate(t, (ms) => (ms < 10_000 ? 200 : 300), 1_800_000);
  assert.deepEqual(gcs, [10_000, 40_000, 100_000]);
});

test('a burst still live at the first GC is released by the next one, 30 s later (no back-off yet)', (t) => {
  // 200 MB; a burst to 300 MB at 20 s, still live at the first GC; over by the second, which gives its
  // pages back (before: the gap doubled after the first, and they stayed until 80 s).
  const gcs = simulate(t, (ms, done) => (done.length >= 2 ? 200 : ms >= 20_000 ? 300 : 200), 120_000);
  assert.deepEqual(gcs, [20_000, 50_000]);
});

test('a GC that frees memory resets the gap: bursts one after another are each released', (t) => {
  // Every 100 s a burst to 300 MB, released by the next GC down to 200 MB.
  const gcs = simulate(
    t,
    (ms, done) => {
      const burstStart = Math.floor(ms / 100_000) * 100_000;
      const released = done.some((g) => g >= burstStart);
      return ms % 100_000 >= 50_000 && !released ? 300 : 200;
    },
    400_000,
  );
  assert.deepEqual(gcs, [50_000, 150_000, 250_000, 350_000]);
});

test('several servers in one process share one watch: one GC for the process, not one each', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_800_000_000_000 });
  const log = pino({ level: 'silent' });
  let rss = 200 * MB;
  const gcs: string[] = [];
  const opts = (name: string) => ({
    thresholdBytes: 40 * MB,
    intervalMs: 5000,
    log,
    rss: () => rss,
    collect: () => gcs.push(name),
    utilization: () => 0.3,
  });
  const stopA = startHeapRelease(opts('a'));
  const stopB = startHeapRelease(opts('b'));
  rss = 300 * MB;
  t.mock.timers.tick(5000);
  assert.deepEqual(gcs, ['a']);
  stopA();
  rss = 200 * MB;
  t.mock.timers.tick(5000);
  rss = 300 * MB;
  t.mock.timers.tick(60_000);
  assert.equal(gcs.length, 2, 'the watch goes on while a server still uses it');
  stopB();
  rss = 400 * MB;
  t.mock.timers.tick(120_000);
  assert.equal(gcs.length, 2, 'and stops with the last one');
  t.mock.timers.reset();
});

test('once the loop is quiet, a quarter of the threshold is enough: a burst of sockets gives its young generation back', (t) => {
  // 80 MB; 1,000 sockets join from 10 s to 20 s (busy) and the process stays at 108 MB, 13 MB of
  // it a grown young generation and pooled pages that a GC gives back (down to 95 MB: the sockets).
  const rss = (ms: number, done: number[]) => (ms < 10_000 ? 80 : done.length > 0 ? 95 : 108);
  const busyUntil = (until: number) => (ms: number) => (ms <= until ? 0.3 : 0.02);
  assert.deepEqual(
    simulate(t, rss, 600_000, () => 0.3),
    [],
    'busy throughout: 28 MB is under 40',
  );
  // The first quiet look gives the 13 MB back; the 15 MB left is live, and after three GCs that
  // free nothing (30 s, then 60 s apart) the floor rises to it.
  assert.deepEqual(simulate(t, rss, 600_000, busyUntil(20_000)), [25_000, 55_000, 85_000, 145_000]);
  // Under a quarter (10 MB) a quiet loop keeps it.
  assert.deepEqual(
    simulate(
      t,
      (ms) => (ms < 10_000 ? 80 : 89),
      120_000,
      () => 0.02,
    ),
    [],
  );
});

test('quiet GCs that free little back off and then take the growth for live memory', (t) => {
  // 12 MB of live memory (sockets still open), quiet: three GCs (30 s, then 60 s apart), then none.
  const gcs = simulate(
    t,
    (ms) => (ms < 10_000 ? 80 : 92),
    1_800_000,
    () => 0.02,
  );
  assert.deepEqual(gcs, [10_000, 40_000, 100_000]);
});

test("a GC in a quiet moment does not hold back the next burst's", (t) => {
  // 80 MB; 12 MB more by 10 s (quiet: a GC at 10 s that frees nothing); a burst to 200 MB at 20 s,
  // busy: its GC runs at once, not 30 s after the quiet one.
  const gcs = simulate(
    t,
    (ms, done) => (ms < 10_000 ? 80 : ms < 20_000 ? 92 : done.length >= 2 ? 92 : 200),
    60_000,
    (ms) => (ms < 20_000 ? 0.02 : 0.3),
  );
  assert.deepEqual(gcs, [10_000, 20_000]);
});

test('a loaded loop (half busy or more) gets no GC until the load eases: its pause would stall every client', (t) => {
  // 200 MB; under load from 10 s the process grows to 300 MB (the load's working set and freed
  // pages); the load eases to 30 % at 60 s and the GC runs at that look, not at 10 s mid-load.
  const load = (ms: number) => (ms < 60_000 ? 0.9 : 0.3);
  const gcs = simulate(t, (ms, done) => (done.length > 0 ? 210 : ms >= 10_000 ? 300 : 200), 300_000, load);
  assert.deepEqual(gcs, [60_000]);
  // Fully loaded throughout: none at all.
  assert.deepEqual(
    simulate(
      t,
      (ms) => (ms < 10_000 ? 200 : 300),
      300_000,
      () => 1,
    ),
    [],
  );
});
