// Values PostgreSQL can't store, and writes that fail (issue 12, item 1): a result, a progress
// message or an error holding NUL or a lone surrogate is stored as U+FFFD, and subscribers saw
// exactly that; a terminal write that always fails ends the task failed with a clear error after
// one more try, the handler having run once; when every write of a task fails, its handler still
// starts at most max_attempts times; and one poisoned item never fails a batch for the others
// (creates, snapshots, terminal writes).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
import { joinTask } from '../helpers/join.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

const runs = new Map<string, number>();
const count = (id: string) => runs.set(id, (runs.get(id) ?? 0) + 1);

const nasty = defineTask({
  name: 'nasty',
  async run(ctx) {
    count(ctx.taskId);
    const kind = (ctx.input as { kind: string }).kind;
    if (kind === 'message') {
      ctx.progress(0.5, 'half \ud800');
      await new Promise((r) => setTimeout(r, 150)); // a snapshot interval (100 ms) passes
      return 'ok';
    }
    if (kind === 'throw') throw new Error('bad \u0000 error');
    return { text: 'cut \u0000 here', 'key\ud800': ['\udc00'] };
  },
});
const plain = defineTask({
  name: 'plain',
  async run(ctx) {
    count(ctx.taskId);
    // Progress every 50 ms for 600 ms: dirty at every snapshot flush (100 ms), so tasks share flushes.
    for (let i = 1; i <= 12; i++) {
      ctx.progress(i / 12, (ctx.input as { message?: string }).message ?? 'fine');
      await new Promise((r) => setTimeout(r, 50));
    }
    return 'done';
  },
});

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ tasks: [nasty, plain], config: { defaultMaxAttempts: 2 } });
  token = await t.token('alice');
});
after(() => t.stop());

async function trigger(
  name: string,
  table: string,
  timing: string,
  body: string,
): Promise<() => Promise<void>> {
  await t.server.pool.query(`
    create or replace function ${name}() returns trigger language plpgsql as $$ begin ${body} end $$;
    create trigger ${name} ${timing} on ${table} for each row execute function ${name}();`);
  return async () => {
    await t.server.pool.query(`drop trigger ${name} on ${table}`);
  };
}

describe('values PostgreSQL cannot store', () => {
  test('a result with NUL and lone surrogates completes once, stored as U+FFFD, as subscribers saw it', async () => {
    const task = await t.createTask(token, { type: 'nasty', kind: 'result' });
    const rec = recorder();
    await joinTask(t.service, 'alice', task.task_id, rec.sub);
    const done = await t.waitForStatus(token, task.task_id, ['completed', 'failed']);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { text: 'cut \uFFFD here', 'key\uFFFD': ['\uFFFD'] });
    await waitFor(() => rec.events.some((e) => e.name === 'completed'), 'the completed event');
    assert.deepEqual(rec.events.find((e) => e.name === 'completed')!.payload.result, done.result);
    assert.equal(runs.get(task.task_id), 1, 'the handler ran once');
  });

  test('a progress message with a lone surrogate is sent and stored as U+FFFD', async () => {
    const task = await t.createTask(token, { type: 'nasty', kind: 'message' });
    const rec = recorder();
    await joinTask(t.service, 'alice', task.task_id, rec.sub);
    await waitFor(() => rec.events.some((e) => e.name === 'progress'), 'progress');
    assert.equal(rec.events.find((e) => e.name === 'progress')!.payload.message, 'half \uFFFD');
    const done = await t.waitForStatus(token, task.task_id, ['completed', 'failed']);
    assert.equal(done.status, 'completed');
    assert.equal(done.message, 'half \uFFFD');
    const trail = await t.api(token, 'GET', `/api/tasks/${task.task_id}/events`);
    assert.ok(trail.body.events.some((e: any) => e.event === 'progress' && e.data.message === 'half \uFFFD'));
  });

  test('an error message with NUL fails the task after max_attempts, stored as U+FFFD', async () => {
    const task = await t.createTask(token, { type: 'nasty', kind: 'throw' });
    const done = await t.waitForStatus(token, task.task_id, ['failed']);
    assert.deepEqual(done.error, { message: 'bad \uFFFD error' });
    assert.equal(runs.get(task.task_id), 2, 'max_attempts runs, no more');
  });
});

describe('writes that fail', () => {
  test('a completion the database always refuses: the task ends failed with a clear error, the handler ran once', async () => {
    const drop = await trigger(
      'refuse_completion',
      'taskwire.tasks',
      'before update',
      `if new.status = 'completed' and new.input->>'message' = 'refuse me' then raise exception 'completion refused'; end if; return new;`,
    );
    try {
      const task = await t.createTask(token, { type: 'plain', message: 'refuse me' });
      const done = await t.waitForStatus(token, task.task_id, ['failed', 'completed'], 15_000);
      assert.equal(done.status, 'failed');
      assert.match(done.error.message, /could not be stored: completion refused/);
      assert.equal(runs.get(task.task_id), 1, 'the handler ran once');
    } finally {
      await drop();
    }
  });

  test('every write of the task refused: its handler starts at most max_attempts times', async () => {
    const drop = await trigger(
      'refuse_all_ends',
      'taskwire.tasks',
      'before update',
      `if old.status = 'running' and new.status <> 'running' and new.input->>'message' = 'refuse all' then
         raise exception 'every end refused'; end if; return new;`,
    );
    try {
      const task = await t.createTask(token, { type: 'plain', message: 'refuse all' });
      // The queue retries the job with its own backoff: skip the waits, and give it every chance.
      for (let round = 0; round < 6; round++) {
        await waitFor(() => (runs.get(task.task_id) ?? 0) >= Math.min(round + 1, 2), 'a run', 10_000).catch(
          () => {},
        );
        await t.server.pool.query(
          `update graphile_worker._private_jobs set run_at = now() where key = $1 and locked_at is null`,
          [task.task_id],
        );
        await new Promise((r) => setTimeout(r, 300)); // a poll interval (100 ms) and a run pass
      }
      assert.ok(
        (runs.get(task.task_id) ?? 0) <= 2,
        `the handler started ${runs.get(task.task_id)} times (max_attempts 2)`,
      );
    } finally {
      await drop();
    }
  });
});

describe('one poisoned item never fails a batch for the others', () => {
  test('creates: nine of ten created at once succeed beside one the database refuses', async () => {
    const drop = await trigger(
      'refuse_create',
      'taskwire.tasks',
      'before insert',
      `if new.input->>'message' = 'poison' then raise exception 'poisoned create'; end if; return new;`,
    );
    try {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          t.api(token, 'POST', '/api/tasks', { type: 'plain', message: i === 4 ? 'poison' : `ok ${i}` }),
        ),
      );
      assert.deepEqual(
        results.map((r) => r.status).filter((s) => s === 201).length,
        9,
        JSON.stringify(results.map((r) => r.status)),
      );
      assert.ok(
        results[4].status >= 500 && results[4].body.error.code,
        'the poisoned one fails alone, in the envelope',
      );
    } finally {
      await drop();
    }
  });

  test('snapshots: a snapshot the database refuses does not hold back the others', async () => {
    const drop = await trigger(
      'refuse_snapshot',
      'taskwire.tasks',
      'before update',
      `if new.status = 'running' and new.message = 'poison snapshot' then raise exception 'poisoned snapshot'; end if; return new;`,
    );
    try {
      const [bad, good] = await Promise.all([
        t.createTask(token, { type: 'plain', message: 'poison snapshot' }),
        t.createTask(token, { type: 'plain', message: 'good snapshot' }),
      ]);
      await waitFor(
        async () => {
          const { rows } = await t.server.pool.query(
            'select status, message from taskwire.tasks where id = $1',
            [good.task_id],
          );
          // While it runs: only a snapshot can have written its message (a completion would too).
          return rows[0].status === 'running' && rows[0].message === 'good snapshot';
        },
        'the good task’s snapshot while it runs',
        5000,
      );
      await t.waitForStatus(token, bad.task_id, ['completed', 'failed']);
      await t.waitForStatus(token, good.task_id, ['completed']);
    } finally {
      await drop();
    }
  });

  test('terminal writes: nine tasks ending together complete beside one whose end is refused', async () => {
    const drop = await trigger(
      'refuse_one_end',
      'taskwire.tasks',
      'before update',
      `if new.status = 'completed' and new.input->>'message' = 'poison end' then raise exception 'poisoned end'; end if; return new;`,
    );
    try {
      const tasks = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          t.createTask(token, { type: 'plain', message: i === 7 ? 'poison end' : `end ${i}` }),
        ),
      );
      const done = await Promise.all(
        tasks.map((x) => t.waitForStatus(token, x.task_id, ['completed', 'failed'])),
      );
      assert.equal(done.filter((d) => d.status === 'completed').length, 9);
      assert.equal(done[7].status, 'failed');
      assert.match(done[7].error.message, /poisoned end/);
    } finally {
      await drop();
    }
  });
});
