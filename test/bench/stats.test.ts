// The bench's worst window: the 250 ms of due times with the slowest median latency, so a report
// tells one stall (where it came) from a tail spread over the whole run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { worstWindow } from '../../bench/lib/stats.ts';

test('the window with the slowest median, and when it came', () => {
  const due: number[] = [];
  const latency: number[] = [];
  for (let i = 0; i < 1000; i++) {
    due.push(1_000_000 + i * 5); // 5 s, one every 5 ms
    latency.push(i >= 600 && i < 650 ? 150 : 10); // a stall from 3.00 to 3.25 s
  }
  assert.deepEqual(worstWindow(due, latency, 250), { atMs: 3000, p50: 150, count: 50 });
});

test('windows with too few samples are left out; no samples, no window', () => {
  const w = worstWindow([0, 10, 20, 1000], [5, 5, 5, 900], 250, 3);
  assert.deepEqual(w, { atMs: 0, p50: 5, count: 3 });
  assert.equal(worstWindow([], [], 250), undefined);
});
