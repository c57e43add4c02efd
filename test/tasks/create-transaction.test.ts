// Creating a task writes the row, its `created` event and its job atomically: a failure of the
// job insert (injected by a trigger on the queue's job table, after the task row and its event
// were inserted by the same statement) leaves none of the three, also for the tasks created
// together with it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;

before(async () => {
  t = await startTestServer();
  await t.server.pool.query(`
    create table inject_job_failure (armed boolean not null);
    insert into inject_job_failure values (false);
    create function fail_job_insert() returns trigger language plpgsql as $$
    begin
      if (select armed from inject_job_failure) then
        raise exception 'injected failure of the job insert';
      end if;
      return new;
    end $$;
    create trigger fail_job_insert before insert on graphile_worker._private_jobs
      for each row execute function fail_job_insert();
  `);
});
after(() => t.stop());

async function counts() {
  const q = (sql: string) => t.server.pool.query(sql).then((r) => Number(r.rows[0].n));
  return {
    tasks: await q('select count(*) as n from taskwire.tasks'),
    events: await q('select count(*) as n from taskwire.task_events'),
    jobs: await q('select count(*) as n from graphile_worker._private_jobs'),
  };
}

const arm = (on: boolean) => t.server.pool.query('update inject_job_failure set armed = $1', [on]);

test('a failure of the job insert leaves neither the task nor its event', async () => {
  const token = await t.token('alice');
  const before = await counts();
  await arm(true);
  try {
    const res = await t.api(token, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 });
    assert.equal(res.status, 500);
    assert.equal(res.body.error.code, 'internal');
    assert.doesNotMatch(JSON.stringify(res.body), /injected|at .*\.ts/, 'no internals leak');
  } finally {
    await arm(false);
  }
  assert.deepEqual(await counts(), before);
});

test('concurrent creates that share one statement all fail together, and leave nothing', async () => {
  const token = await t.token('alice');
  const before = await counts();
  await arm(true);
  try {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => t.api(token, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 })),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      results.map(() => 500),
    );
  } finally {
    await arm(false);
  }
  assert.deepEqual(await counts(), before);
});

test('a successful create writes the row, the created event and the job together', async () => {
  const token = await t.token('alice');
  const created = await Promise.all(
    Array.from({ length: 20 }, () => t.createTask(token, { steps: 1, interval_ms: 0 })),
  );
  for (const task of created) {
    const { rows } = await t.server.pool.query(
      "select event from taskwire.task_events where task_id = $1 and event = 'created'",
      [task.task_id],
    );
    assert.equal(rows.length, 1);
  }
  for (const task of created) await t.waitForStatus(token, task.task_id, ['completed']);
});
