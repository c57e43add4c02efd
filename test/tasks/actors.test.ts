// Actor lifetime, through a real server: an actor lives exactly while its attempt runs on this
// node (a finished task is answered from the database); a crashed actor's subscribers learn it
// (phx_error on the wire) and a rejoin gets fresh state while the attempt goes on.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
import { joinTask } from '../helpers/join.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

let release: () => void = () => {};
const gated = defineTask({
  name: 'gated',
  async run(ctx) {
    ctx.progress(0.25, 'before the gate');
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    ctx.progress(0.75, 'after the gate');
    return 'done';
  },
});

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ tasks: [gated] });
  token = await t.token('alice');
});
after(() => t.stop());

test('an actor lives while its attempt runs; a finished task is answered from the database', async () => {
  const task = await t.createTask(token, { type: 'gated' });
  await waitFor(() => t.server.registry.get(task.task_id)?.state.progress === 0.25, 'first progress');
  release();
  await t.waitForStatus(token, task.task_id, ['completed']);
  assert.equal(t.server.registry.get(task.task_id), undefined, 'the actor left with its attempt');
  assert.equal(t.server.registry.size, 0, 'an idle process holds no per-task memory');
  const rec = recorder();
  const late = await joinTask(t.service, 'alice', task.task_id, rec.sub);
  assert.equal(late?.task.status, 'completed');
  assert.equal(late?.task.result, 'done');
  assert.equal(t.server.registry.size, 0, 'a join starts no actor');
  late?.leave();
});

test('a join on the running node gives the state and the subscription in one step: nothing missed, nothing twice', async () => {
  const task = await t.createTask(token, { type: 'gated' });
  await waitFor(() => t.server.registry.get(task.task_id)?.state.progress === 0.25, 'first progress');
  const rec = recorder();
  const sub = await joinTask(t.service, 'alice', task.task_id, rec.sub);
  assert.ok(sub);
  assert.equal(sub.task.progress, 0.25, 'the live state, not the last snapshot');
  const stateSeq = sub.task.seq;
  release();
  await t.waitForStatus(token, task.task_id, ['completed']);
  await waitFor(() => rec.events.some((e) => e.name === 'completed'), 'the completed event');
  assert.deepEqual(
    rec.events.map((e) => e.payload.seq),
    rec.events.map((_, i) => stateSeq + 1 + i),
    'events continue exactly after the joined state',
  );
  sub.leave();
});

test('a crashed actor tells its subscribers, and a rejoin gets fresh state while the attempt goes on', async () => {
  const task = await t.createTask(token, { type: 'gated' });
  await waitFor(() => t.server.registry.get(task.task_id)?.state.progress === 0.25, 'first progress');
  await t.server.snapshotter.flush();
  const rec = recorder();
  const sub = await joinTask(t.service, 'alice', task.task_id, rec.sub);
  assert.ok(sub);
  const seqBefore = sub.task.seq;
  const crashed = t.server.registry.get(task.task_id);
  assert.equal(t.server.supervisor.kill(task.task_id), true);
  assert.equal(rec.lost, 1, 'the subscriber learned that the actor died');
  // Rejoin (what a Phoenix client does after phx_error) gets the state again, from the new actor.
  await waitFor(() => {
    const actor = t.server.registry.get(task.task_id);
    return actor && actor !== crashed;
  }, 'the restarted actor');
  const rec2 = recorder();
  const again = await joinTask(t.service, 'alice', task.task_id, rec2.sub);
  assert.ok(again);
  assert.equal(again.task.status, 'running');
  assert.ok(again.task.seq >= seqBefore, 'seq never goes backwards across a restart');
  release();
  await t.waitForStatus(token, task.task_id, ['completed']);
  await waitFor(() => rec2.events.some((e) => e.name === 'completed'), 'completed after the restart');
  const seqs = rec2.events.map((e) => e.payload.seq);
  assert.ok(seqs.every((s, i) => s > (i === 0 ? again.task.seq : seqs[i - 1])));
  again.leave();
});

test('another user cannot join a task; an unknown id joins nothing', async () => {
  const task = await t.createTask(token, { steps: 1, interval_ms: 0 });
  assert.equal(await joinTask(t.service, 'mallory', task.task_id, recorder().sub), null);
  assert.equal(
    await joinTask(t.service, 'alice', '00000000-0000-7000-8000-000000000000', recorder().sub),
    null,
  );
  assert.deepEqual(t.server.pubsub.topics(), [], 'a refused join leaves no subscription behind');
});
