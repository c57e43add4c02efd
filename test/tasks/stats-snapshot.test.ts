// GET /api/stats (and the admin `stats` event) read tasks in flight and tasks finished in separate
// statements. They must see one moment: a task that ends between the two reads is counted once,
// not as running and completed at the same time (the dashboard showed "running 3" beside a
// completed count that already held those tasks).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { migrate } from '../../src/db/index.ts';
import { createTasks } from '../../src/queue/sql/createTasks.ts';
import { StatsReader } from '../../src/tasks/stats.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { newTaskFixture } from '../helpers/task-fixture.ts';

let db: TestDatabase;
let pool: pg.Pool;

before(async () => {
  db = await createTestDatabase();
  pool = db.pool(6);
  await migrate(pool);
});
after(() => db.drop());

type Query = (...args: unknown[]) => Promise<unknown>;

function textOf(args: unknown[]): string {
  const first = args[0] as string | { text?: string };
  return typeof first === 'string' ? first : (first?.text ?? '');
}

/** `real` with every query (through the pool or a client from `connect()`) going through `watch`. */
function watchQueries(real: pg.Pool, watch: (query: Query) => Query): pg.Pool {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'query') return watch(target.query.bind(target) as Query);
      if (prop === 'connect')
        return async () => {
          const client = await target.connect();
          return new Proxy(client, {
            get(c, p) {
              if (p === 'query') return watch(c.query.bind(c) as Query);
              const v = Reflect.get(c, p);
              return typeof v === 'function' ? v.bind(c) : v;
            },
          });
        };
      const v = Reflect.get(target, prop);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/**
 * The pool the reader gets: once the in-flight read has answered, `between` runs (on another
 * connection, committed), and the read of finished tasks waits for it. Queries through a client
 * from `connect()` are watched the same way.
 */
function interleaving(real: pg.Pool, between: () => Promise<void>): pg.Pool {
  let done: Promise<void> | undefined;
  let ran!: () => void;
  const betweenRan = new Promise<void>((resolve) => {
    ran = resolve;
  });
  const watch = (query: Query): Query => {
    return async (...args: unknown[]) => {
      const text = textOf(args);
      if (text.includes('finished_at is not null')) await betweenRan;
      const result = await query(...args);
      if (text.includes("status in ('queued', 'running')") && text.includes('group by type, status')) {
        done ??= between().then(ran);
        await done;
      }
      return result;
    };
  };
  return watchQueries(real, watch);
}

test('a task that ends between the in-flight and the finished reads is counted once', async () => {
  const [task] = await createTasks(pool, [newTaskFixture('alice')]);
  await pool.query(
    `update taskwire.tasks set status = 'running', attempt = 1, started_at = now() where id = $1`,
    [task.task_id],
  );
  const reader = new StatsReader({
    pool: interleaving(pool, async () => {
      await pool.query(`update taskwire.tasks set status = 'completed', finished_at = now() where id = $1`, [
        task.task_id,
      ]);
    }),
    nodeId: 'node-a',
    nodeDeadAfterMs: 10_000,
    localSockets: () => 0,
  });
  const stats = await reader.read(null, '1h');
  assert.ok(stats);
  const { counts } = stats;
  assert.equal(
    counts.queued + counts.running + counts.completed + counts.failed + counts.cancelled,
    1,
    `one task, counted once: ${JSON.stringify(counts)}`,
  );
  // The other owner-scoped path reads the same way.
  const own = await new StatsReader({
    pool,
    nodeId: 'node-a',
    nodeDeadAfterMs: 10_000,
    localSockets: () => 0,
  }).read('alice', '1h');
  assert.equal(own?.counts.completed, 1, 'and once it has ended, it is completed');
});

test('the snapshot runs its reads one at a time on its client (pg deprecates queueing a query behind another)', async () => {
  let active = 0;
  let most = 0;
  const watched = watchQueries(pool, (query) => async (...args: unknown[]) => {
    active += 1;
    most = Math.max(most, active);
    try {
      return await query(...args);
    } finally {
      active -= 1;
    }
  });
  for (const owner of [null, 'alice']) {
    const stats = await new StatsReader({
      pool: watched,
      nodeId: 'node-a',
      nodeDeadAfterMs: 10_000,
      localSockets: () => 0,
    }).read(owner, '1h');
    assert.ok(stats, 'the figures were read');
  }
  assert.equal(most, 1, 'at most one query at a time on the snapshot client');
});
