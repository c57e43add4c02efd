// The progress path never touches the database: 10,000 progress updates of one task cause at
// most 20 database writes for it (counted by triggers), and every update reaches subscribers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
import { joinTask } from '../helpers/join.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

const UPDATES = 10_000;
let release: () => void = () => {};
const gate = new Promise<void>((resolve) => {
  release = resolve;
});

const spam = defineTask({
  name: 'spam',
  async run(ctx) {
    await gate; // wait until the test has subscribed
    for (let i = 1; i <= UPDATES; i++) {
      ctx.progress(i / UPDATES, `step ${i}`);
      if (i % 500 === 0) await new Promise((r) => setTimeout(r, 5)); // spread over several flushes
    }
    return { updates: UPDATES };
  },
});

let t: TestServer;
before(async () => {
  t = await startTestServer({ tasks: [spam] });
  await t.server.pool.query(`
    create table write_log (task_id uuid, tbl text, op text);
    create function log_write() returns trigger language plpgsql as $$
    begin
      insert into write_log values (coalesce(to_jsonb(new)->>'task_id', to_jsonb(new)->>'id')::uuid, tg_table_name, tg_op);
      return new;
    end $$;
    create trigger tasks_writes after insert or update on taskwire.tasks
      for each row execute function log_write();
    create trigger task_events_writes after insert or update on taskwire.task_events
      for each row execute function log_write();
  `);
});
after(() => t.stop());

test(`${UPDATES} progress updates cause at most 20 database writes and all reach the subscriber`, async () => {
  const token = await t.token('alice');
  const task = await t.createTask(token, { type: 'spam' });
  const rec = recorder();
  const sub = await joinTask(t.service, 'alice', task.task_id, rec.sub);
  assert.ok(sub);
  await waitFor(() => t.server.registry.get(task.task_id), 'the attempt to start');
  release();
  await t.waitForStatus(token, task.task_id, ['completed'], 30_000);
  await t.server.snapshotter.flush();

  const progress = rec.events.filter((e) => e.name === 'progress');
  assert.equal(progress.length, UPDATES, 'every update reached the subscriber');
  const seqs = rec.events.map((e) => e.payload.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq strictly increasing at ${i}`);
  assert.equal(rec.events.at(-1)?.name, 'completed');

  const { rows } = await t.server.pool.query<{ tbl: string; op: string; n: string }>(
    'select tbl, op, count(*) as n from write_log where task_id = $1 group by tbl, op order by tbl, op',
    [task.task_id],
  );
  const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
  console.log(`# ${UPDATES} progress updates: ${total} row writes for the task (${JSON.stringify(rows)})`);
  // insert task + created event + claim (update + started event) + completion (update + event) = 6;
  // the rest are snapshots and at most 10 progress checkpoints.
  assert.ok(total <= 20, `at most 20 row writes, got ${total}: ${JSON.stringify(rows)}`);
  sub.leave();
});
