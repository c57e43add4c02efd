// The generator's receive span starts at the load's first event: a `started` that a subscriber
// saw during the start gate (its join beat the claim) used to open it, and the run's events/s
// came out a third of the real rate in some rounds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Recorder, Sub } from '../../bench/generator/conns.ts';

test('a `started` seen before the load does not open the receive span', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000 });
  const rec = new Recorder();
  rec.reset(false);
  const sub = new Sub('task-1');
  rec.event(sub, 'started', 1, 1_000);
  t.mock.timers.tick(4_000); // the start gate
  rec.event(sub, 'progress', 2, 5_000);
  t.mock.timers.tick(1_000);
  rec.event(sub, 'completed', 3, 6_000);
  assert.equal(rec.events, 3, 'every event is counted');
  assert.equal(rec.firstRecv, 5_000);
  assert.equal(rec.lastRecv, 6_000);
  t.mock.timers.reset();
});
