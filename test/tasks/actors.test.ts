// Actor lifetime: a finished actor lingers for late joiners and then frees its memory; a
// crashed actor's subscribers learn it (phx_error on the wire) and a rejoin gets fresh state.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
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
  t = await startTestServer({ tasks: [gated], config: { lingerMs: 300 } });
  token = await t.token('alice');
});
after(() => t.stop());

test('a finished actor lingers, answers late joiners from memory, then frees itself', async () => {
  const task = await t.createTask(token, { steps: 1, interval_ms: 0 });
  const finished = await t.waitForStatus(token, task.task_id, ['completed']);
  const actor = t.server.registry.get(task.task_id);
  assert.ok(actor, 'the actor lingers after the terminal state');
  const finishedAt = Date.parse(finished.updated_at);
  const rec = recorder();
  const late = await t.service.join('alice', task.task_id, rec.sub, () => {});
  assert.equal(late?.task.status, 'completed');
  await waitFor(() => !t.server.registry.get(task.task_id), 'the actor to be freed', 5000);
  assert.ok(Date.now() - finishedAt >= 250, 'not before the linger time');
  assert.equal(t.server.registry.size, 0, 'an idle process holds no per-task memory');
  // The row answers from then on.
  const stored = (await t.api(token, 'GET', `/api/tasks/${task.task_id}`)).body;
  assert.equal(stored.status, 'completed');
  late?.leave();
});

test('a join loads a finished task from the database, and the loaded actor is freed after the linger', async () => {
  const task = await t.createTask(token, { steps: 1, interval_ms: 0 });
  await t.waitForStatus(token, task.task_id, ['completed']);
  await waitFor(() => !t.server.registry.get(task.task_id), 'the actor to be freed', 5000);
  const sub = await t.service.join('alice', task.task_id, recorder().sub, () => {});
  assert.equal(sub?.task.status, 'completed');
  assert.ok(t.server.registry.get(task.task_id));
  await waitFor(() => !t.server.registry.get(task.task_id), 'the loaded actor to be freed', 5000);
  sub?.leave();
});

test('join gives the state and the subscription in one step: nothing missed, nothing twice', async () => {
  const task = await t.createTask(token, { type: 'gated' });
  await waitFor(() => t.server.registry.get(task.task_id)?.state.progress === 0.25, 'first progress');
  const rec = recorder();
  let stateSeq = -1;
  const sub = await t.service.join('alice', task.task_id, rec.sub, (state) => {
    stateSeq = state.seq;
    assert.equal(rec.events.length, 0, 'no event before the state');
  });
  assert.ok(sub);
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
  const sub = await t.service.join('alice', task.task_id, rec.sub, () => {});
  assert.ok(sub);
  const seqBefore = sub.task.seq;
  assert.equal(t.server.supervisor.kill(task.task_id), true);
  assert.equal(rec.lost, 1, 'the subscriber learned that the actor died');
  // Rejoin (what a Phoenix client does after phx_error) gets the state again.
  const rec2 = recorder();
  const again = await waitFor(
    () => t.service.join('alice', task.task_id, rec2.sub, () => {}),
    'a rejoin after the restart',
  );
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
  assert.equal(await t.service.join('mallory', task.task_id, recorder().sub, () => {}), null);
  assert.equal(
    await t.service.join('alice', '00000000-0000-7000-8000-000000000000', recorder().sub, () => {}),
    null,
  );
});
