// The create statement's plan: the owner's turn (its newest queued task's vtime) is looked up once
// per owner in a batch, not once per new task. Per task, a plan that reads the owner's queued tasks
// through the status index (what PostgreSQL picks before the table has statistics) made every
// create cost O(batch × backlog).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { migrate } from '../../src/db/index.ts';
import { LIBRARY_MAX_ATTEMPTS, RUN_TASK_JOB } from '../../src/queue/jobs.ts';
import { CREATE_TASKS_SQL, createTasks } from '../../src/queue/sql/createTasks.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { newTaskFixture } from '../helpers/task-fixture.ts';

let db: TestDatabase;
let pool: pg.Pool;

before(async () => {
  db = await createTestDatabase();
  pool = db.pool(4);
  await migrate(pool);
});
after(() => db.drop());

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Cond'?: string;
  Filter?: string;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

function nodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(nodes)];
}

test("a batch of one owner's creates looks up that owner's turn once", async () => {
  await createTasks(pool, [newTaskFixture('alice'), newTaskFixture('alice')]); // a queued backlog to look into
  const batch = Array.from({ length: 5 }, (_, ord) => ({ ...newTaskFixture('alice'), ord }));
  const input = batch.map(({ ord, id, owner, type, input, maxAttempts, priority }) => ({
    ord,
    id,
    owner,
    type,
    input,
    max_attempts: maxAttempts,
    idempotency_key: null,
    priority,
    scheduled_at: null,
  }));
  const c = await pool.connect();
  try {
    await c.query('begin');
    const { rows } = await c.query(`explain (analyze, format json) ${CREATE_TASKS_SQL}`, [
      JSON.stringify(input),
      RUN_TASK_JOB,
      LIBRARY_MAX_ATTEMPTS,
    ]);
    await c.query('rollback');
    const plan = rows[0]['QUERY PLAN'][0].Plan as PlanNode;
    const lookups = nodes(plan).filter(
      (n) => n['Relation Name'] === 'tasks' && `${n['Index Cond']} ${n.Filter}`.includes("'queued'"),
    );
    assert.ok(lookups.length > 0, 'the plan reads the owner’s queued tasks');
    for (const n of lookups) assert.equal(n['Actual Loops'], 1, `${n['Node Type']} ran once, not per task`);
  } finally {
    c.release();
  }
});
