// User task types: a module of defineTask() exports, loaded with --tasks / TASKWIRE_TASKS.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { defineTask } from '../../src/index.ts';
import { loadTaskModules } from '../../src/server/task-modules.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const example = path.join(import.meta.dirname, '../../examples/my-tasks.js');

let t: TestServer;
before(async () => {
  t = await startTestServer({ taskModules: [example] });
});
after(() => t.stop());

test('a user task module registers its types and they run end to end', async () => {
  const token = await t.token('alice');
  const task = await t.createTask(token, { type: 'count-words', text: 'to be or not to be' });
  const done = await t.waitForStatus(token, task.task_id, ['completed']);
  assert.deepEqual(done.result, { words: 6, distinct: 4 });
});

test('a module without task types is an error, not a silent no-op', async () => {
  await assert.rejects(
    loadTaskModules([path.join(import.meta.dirname, '../helpers/wait.ts')]),
    /exports no task type/,
  );
  await assert.rejects(loadTaskModules(['/nonexistent/tasks.js']), /could not load task module/);
});

test('defineTask refuses bad definitions', () => {
  assert.throws(() => defineTask({ name: 'bad name!', run: () => 1 }), /not valid/);
  assert.throws(() => defineTask({ name: 'x', maxAttempts: 0, run: () => 1 }), /maxAttempts/);
  assert.throws(() => defineTask({ name: 'x', timeoutMs: 5 * 3600_000, run: () => 1 }), /timeoutMs/);
});
