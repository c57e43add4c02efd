// The group commit's linger: after a quiet spell the first item is written at once; an item that
// comes less than FREQUENT_MS after the last write ended waits LINGER_MS, and what comes meanwhile
// shares its write (issue 14: small batches back to back at a moderate rate).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FREQUENT_MS, GroupCommit, LINGER_MS } from '../../src/tasks/group-commit.ts';

/** A GroupCommit whose writes are recorded and end at once. */
function recorded() {
  const writes: number[][] = [];
  const commit = new GroupCommit<number, number>(async (items) => {
    writes.push(items);
    return items.map((i) => i * 2);
  });
  return { writes, commit };
}

test('after a quiet spell, the first item is written at once', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const { writes, commit } = recorded();
  assert.equal(await commit.submit(1), 2);
  assert.deepEqual(writes, [[1]], 'no timer had to run');
  t.mock.timers.reset();
});

test('items that come right after a write wait LINGER_MS and share one write', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const { writes, commit } = recorded();
  await commit.submit(1);
  t.mock.timers.tick(FREQUENT_MS - 1);
  // Less than FREQUENT_MS after that write ended: the next item lingers, and the others join it.
  const second = commit.submit(2);
  await Promise.resolve();
  assert.deepEqual(writes, [[1]], 'the second item waits');
  const third = commit.submit(3);
  const fourth = commit.submit(4);
  t.mock.timers.tick(LINGER_MS);
  assert.deepEqual(await Promise.all([second, third, fourth]), [4, 6, 8]);
  assert.deepEqual(writes, [[1], [2, 3, 4]]);
  // Once writes have stopped for FREQUENT_MS, the next one goes at once again.
  t.mock.timers.tick(FREQUENT_MS);
  await commit.submit(5);
  assert.deepEqual(writes.at(-1), [5]);
  t.mock.timers.reset();
});

test('a linger of 0 never waits', async () => {
  const writes: number[][] = [];
  const commit = new GroupCommit<number, number>(
    async (items) => {
      writes.push(items);
      return items;
    },
    500,
    0,
  );
  await commit.submit(1);
  await commit.submit(2);
  assert.deepEqual(writes, [[1], [2]]);
});
