// Why a queued task waits (api.md "Fair scheduling"): GET of a queued task answers it in the
// `Taskwire-Wait` header (user_limit, type_limit, scheduled, turn), and /metrics counts waiting tasks
// per reason with the oldest wait. A per-type `concurrency` caps its type across the server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineTask } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const holding = new Set<() => void>();
const hold = (ctx: { signal: AbortSignal }) =>
  new Promise((resolve) => {
    const done = () => resolve(null);
    holding.add(done);
    ctx.signal.addEventListener('abort', done, { once: true });
  });
const held = defineTask({ name: 'held', run: hold });
const scarce = defineTask({ name: 'scarce', concurrency: 1, run: hold });

let t: TestServer;
let alice: string;
let bob: string;
before(async () => {
  t = await startTestServer({ config: { userConcurrency: 2, concurrency: 10 }, tasks: [held, scarce] });
  [alice, bob] = await Promise.all([t.token('alice'), t.token('bob')]);
});
after(async () => {
  for (const release of holding) release();
  await t.stop();
});

async function waitHeader(token: string, id: string): Promise<string | null> {
  return (await t.api(token, 'GET', `/api/tasks/${id}`)).headers.get('taskwire-wait');
}

async function metric(name: string, reason: string): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{reason="${reason}"}`));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

test('queued tasks say why they wait, and /metrics counts them by reason', async () => {
  const a1 = await t.createTask(alice, { type: 'held' });
  const a2 = await t.createTask(alice, { type: 'held' });
  await t.waitForStatus(alice, a2.task_id, ['running']);
  const a3 = await t.createTask(alice, { type: 'held' });
  const s1 = await t.createTask(bob, { type: 'scarce' });
  await t.waitForStatus(bob, s1.task_id, ['running']);
  const s2 = await t.createTask(bob, { type: 'scarce' });
  const later = await t.createTask(bob, { type: 'held', delay_ms: 60_000 });

  assert.equal(await waitHeader(alice, a3.task_id), 'user_limit');
  assert.equal(await waitHeader(bob, s2.task_id), 'type_limit');
  assert.equal(await waitHeader(bob, later.task_id), 'scheduled');
  assert.equal(await waitHeader(alice, a1.task_id), null, 'a running task does not wait');
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(
    (await t.api(alice, 'GET', `/api/tasks/${a3.task_id}`)).body.status,
    'queued',
    'the cap holds',
  );

  assert.equal(await metric('taskwire_waiting_tasks', 'user_limit'), 1);
  assert.equal(await metric('taskwire_waiting_tasks', 'type_limit'), 1);
  assert.equal(await metric('taskwire_waiting_tasks', 'scheduled'), 1);
  assert.equal(await metric('taskwire_waiting_tasks', 'turn'), 0);
  assert.ok((await metric('taskwire_waiting_oldest_seconds', 'user_limit')) >= 1);

  // A slot frees: the waiting task of that owner starts (no later than a moment after).
  await t.api(alice, 'POST', `/api/tasks/${a1.task_id}/cancel`);
  await t.waitForStatus(alice, a3.task_id, ['running'], 5000);
  await t.api(bob, 'POST', `/api/tasks/${s1.task_id}/cancel`);
  await t.waitForStatus(bob, s2.task_id, ['running'], 5000);
  await waitFor(async () => (await metric('taskwire_waiting_tasks', 'user_limit')) === 0, 'metrics follow');
  for (const id of [a2.task_id, a3.task_id]) await t.api(alice, 'POST', `/api/tasks/${id}/cancel`);
  for (const id of [s2.task_id, later.task_id]) await t.api(bob, 'POST', `/api/tasks/${id}/cancel`);
});
