// The admin role (api.md "Authentication"): a token with claim `"role": "admin"` reads, lists
// and cancels every user's tasks and joins `admin:tasks` (every task event of every user, with
// `owner`, and the `stats` event); any other token gets 403 forbidden on admin routes and
// `unauthorized` on the admin topic, and still sees only its own tasks.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Followed, follow } from '../helpers/cluster.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
let alice: string;
let bob: string;
let root: string;
const followers: Followed[] = [];

before(async () => {
  t = await startTestServer({ statsIntervalMs: 200 });
  alice = await t.token('alice');
  bob = await t.token('bob');
  root = await t.server.tokens.mint('root', 3600, { admin: true });
});
after(async () => {
  for (const f of followers) f.close();
  await t.stop();
});

describe('HTTP', () => {
  test("an admin reads any user's task (with its owner), its events, and lists by owner or everyone's", async () => {
    const mine = await t.createTask(alice, { steps: 1, interval_ms: 0 });
    const theirs = await t.createTask(bob, { steps: 1, interval_ms: 0 });
    const got = await t.api(root, 'GET', `/api/tasks/${mine.task_id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.owner, 'alice');
    assert.equal((await t.api(root, 'GET', `/api/tasks/${theirs.task_id}/events`)).status, 200);

    const byOwner = await t.api(root, 'GET', '/api/tasks?owner=bob');
    assert.equal(byOwner.status, 200);
    assert.deepEqual(
      byOwner.body.tasks.map((x: any) => x.task_id),
      [theirs.task_id],
    );
    const all = await t.api(root, 'GET', '/api/tasks?all=true&limit=100');
    const ids = all.body.tasks.map((x: any) => x.task_id);
    assert.ok(ids.includes(mine.task_id) && ids.includes(theirs.task_id), "everyone's tasks");
    assert.deepEqual(
      new Set(all.body.tasks.map((x: any) => x.owner)),
      new Set(['alice', 'bob']),
      'each with its owner',
    );
    // Keyset pages over everyone's tasks: no task twice, none skipped.
    const first = await t.api(root, 'GET', '/api/tasks?all=true&limit=1');
    const second = await t.api(root, 'GET', `/api/tasks?all=true&limit=1&cursor=${first.body.next_cursor}`);
    assert.deepEqual(
      [first.body.tasks[0].task_id, second.body.tasks[0].task_id],
      [theirs.task_id, mine.task_id],
    );
    // Its own list stays its own.
    assert.deepEqual((await t.api(root, 'GET', '/api/tasks')).body.tasks, []);
  });

  test("an admin cancels another user's task", async () => {
    const task = await t.createTask(alice, { steps: 50, interval_ms: 100 });
    const res = await t.api(root, 'POST', `/api/tasks/${task.task_id}/cancel`);
    assert.equal(res.status, 202);
    assert.equal((await t.waitForStatus(alice, task.task_id, ['cancelled'])).status, 'cancelled');
  });

  test("a non-admin gets 403 forbidden on admin routes, and 404 for another user's task", async () => {
    for (const path of ['/api/tasks?all=true', '/api/tasks?owner=bob', '/api/stats?all=true']) {
      const res = await t.api(alice, 'GET', path);
      assert.equal(res.status, 403, path);
      assert.equal(res.body.error.code, 'forbidden', path);
    }
    assert.equal((await t.api(alice, 'GET', '/api/tasks?owner=alice')).status, 200, 'its own, by name');
    const theirs = await t.createTask(bob, { steps: 1, interval_ms: 0 });
    assert.equal((await t.api(alice, 'GET', `/api/tasks/${theirs.task_id}`)).status, 404);
    assert.equal((await t.api(alice, 'POST', `/api/tasks/${theirs.task_id}/cancel`)).status, 404);
    const own = await t.api(alice, 'GET', '/api/tasks?limit=100');
    assert.ok(own.body.tasks.every((x: any) => x.owner === undefined));
    assert.ok(!own.body.tasks.some((x: any) => x.task_id === theirs.task_id));
  });

  test('a token whose role is anything but admin is an ordinary user', async () => {
    const { SignJWT } = await import('jose');
    const key = new TextEncoder().encode('test-secret-0123456789abcdef');
    const fake = await new SignJWT({ role: 'Admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('eve')
      .sign(key);
    assert.equal((await t.api(fake, 'GET', '/api/tasks?all=true')).status, 403);
  });
});

describe('admin:tasks', () => {
  test("an admin gets every user's tasks in flight, then every event with its owner, and stats", async () => {
    const running = await t.createTask(bob, { steps: 100, interval_ms: 50 });
    await t.waitForStatus(bob, running.task_id, ['running']);
    const admin = await follow(t.url, root, 'admin:tasks');
    followers.push(admin);
    assert.ok(
      admin.replies[0].tasks.some((x: any) => x.task_id === running.task_id && x.owner === 'bob'),
      "the join reply lists every user's tasks in flight, with owners",
    );
    const task = await t.createTask(alice, { steps: 2, interval_ms: 10 });
    const created = await admin.until('created', (p) => p.task_id === task.task_id);
    assert.equal(created.owner, 'alice');
    const done = await admin.until('completed', (p) => p.task_id === task.task_id);
    assert.equal(done.owner, 'alice');
    const stats = await admin.until('stats', (p) => p.counts.completed >= 1);
    assert.equal(stats.scope, 'all');
    assert.ok(stats.counts.running >= 1, "bob's running task is counted");
    await t.api(root, 'POST', `/api/tasks/${running.task_id}/cancel`);
  });

  test('a non-admin is refused with unauthorized', async () => {
    await assert.rejects(follow(t.url, alice, 'admin:tasks'), /unauthorized/);
  });
});
