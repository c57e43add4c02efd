// The open-loop generator's warm-up drains before the measured schedule starts: the measured
// submissions used to be due on the warm-up's clock, so they queued behind the cold start's
// backlog and that transient set the run's p99 (560 ms against ~100 in the steady state).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openLoop } from '../../bench/generator/open-loop.ts';

test('a measured phase starts its clock when the warm-up has ended', async () => {
  const ended: number[] = [];
  const due: number[] = [];
  const slow = (ms: number) => async (i: number, dueAt: number) => {
    due[i] = dueAt;
    await new Promise((resolve) => setTimeout(resolve, ms));
    ended[i] = Date.now();
  };
  const phase = { rate: 1000, concurrency: 100 };
  await openLoop({ ...phase, from: 0, to: 10, run: slow(50) });
  const warmEnd = Math.max(...ended.slice(0, 10));
  await openLoop({ ...phase, from: 10, to: 20, run: slow(1) });
  assert.ok(due[10] >= warmEnd, `first measured due ${due[10]} is after the warm-up ended ${warmEnd}`);
  for (let i = 11; i < 20; i++) assert.equal(due[i] - due[10], i - 10, 'one per ms at 1,000/s');
});

test('a phase resolves once every submission has ended, and counts ticks with no free slot', async () => {
  let inflight = 0;
  let most = 0;
  const late = await openLoop({
    from: 0,
    to: 20,
    rate: 2000,
    concurrency: 2,
    run: async () => {
      most = Math.max(most, ++inflight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inflight -= 1;
    },
  });
  assert.equal(inflight, 0);
  assert.equal(most, 2, 'never more than the cap in flight');
  assert.ok(late > 0, 'a full cap is counted as late');
});

test('a failed submission still frees its slot', async () => {
  const phase = openLoop({
    from: 0,
    to: 5,
    rate: 1000,
    concurrency: 1,
    run: () => Promise.reject(new Error('refused')),
  });
  const stuck = new Promise((resolve) => setTimeout(resolve, 2_000, 'stuck').unref());
  assert.equal(await Promise.race([phase.then(() => 'ended'), stuck]), 'ended');
});

test('an empty phase resolves at once', async () => {
  assert.equal(await openLoop({ from: 3, to: 3, rate: 10, concurrency: 1, run: () => Promise.resolve() }), 0);
});
