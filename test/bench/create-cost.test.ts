// The create-cost tool at tiny size: it builds a backlog through createTasks, times batches on the
// connection that built it and on a fresh one after `analyze`, and prints both in its JSON line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTool } from '../helpers/tool.ts';

test('create-cost times the create statement behind a backlog, with an early plan and after analyze', {
  timeout: 60_000,
}, async () => {
  const row = await runTool('create-cost.ts', ['--backlog', '300', '--batch', '5', '--calls', '3']);
  assert.equal(row.backlog, 300);
  assert.equal(row.batch, 5);
  for (const key of ['early_plan_p50_ms', 'early_plan_p99_ms', 'analyzed_p50_ms', 'analyzed_p99_ms'])
    assert.ok(row[key] > 0, `${key} is a positive number: ${row[key]}`);
});
