// Streamed output across real processes (postgres bus): a follower on a node that does not run the
// task resumes from index 0 mid-stream (stored chunks from the database, unsaved ones from the
// running node's memory over the bus, then live), SSE on yet another node; and kill -9 of the
// running node mid-stream: the rescued attempt's output_reset tells clients to start over, and no
// client shows text twice.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { generatedText } from '../../src/tasks/index.ts';
import { startNodes } from '../helpers/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { followOutput, type OutputFollower } from '../helpers/output-follower.ts';
import { post, type ServerProcess, testToken } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const dbs: TestDatabase[] = [];
const procs: ServerProcess[] = [];
const followers: OutputFollower[] = [];
after(async () => {
  for (const f of followers) f.close();
  for (const p of procs) if (p.child.exitCode === null) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await Promise.all(dbs.map((d) => d.drop()));
});

const ws = (p: ServerProcess) => `${p.url.replace(/^http/, 'ws')}/socket`;

async function status(url: string, token: string, id: string): Promise<any> {
  const res = await fetch(`${url}/api/tasks/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return res.json();
}

describe('streamed output across nodes', { concurrency: false }, () => {
  test('resume from 0 on a node that does not run the task, mid-stream; SSE on a third', async () => {
    const db = await createTestDatabase();
    dbs.push(db);
    const alice = await testToken('alice');
    const [a, b, c] = await startNodes(db.url, 'postgres', [
      { id: 'st-a', worker: true, env: { TASKWIRE_OUTPUT_FLUSH_MS: '200' } },
      { id: 'st-b', worker: false },
      { id: 'st-c', worker: false },
    ]);
    procs.push(a, b, c);
    const prompt = 'resume me from anywhere';
    const created = await post(a.url, alice, '/api/tasks', {
      type: 'generate',
      prompt,
      tokens: 400,
      interval_ms: 5,
    });
    const id = created.body.task_id;
    await waitFor(async () => (await status(b.url, alice, id)).output.next >= 100, '100 chunks out');
    const onB = followOutput(ws(b), alice, id, 0);
    followers.push(onB);
    const sse = fetch(`${c.url}/api/tasks/${id}/output`, {
      headers: { authorization: `Bearer ${alice}` },
    }).then((r) => r.text());
    await onB.finished();
    assert.equal(onB.text(), generatedText(prompt, 400));
    assert.ok(
      [...onB.deliveries.values()].every((n) => n === 1),
      'each chunk once',
    );
    const text = await sse;
    const chunks = [...text.matchAll(/^data: (\{"index".*)$/gm)].map((m) => JSON.parse(m[1]));
    assert.equal(chunks.map((x) => x.data).join(''), generatedText(prompt, 400));
    assert.match(text, /event: end\ndata: \{[^\n]*"status":"completed"/);
  });

  test('kill -9 of the running node mid-stream: output_reset from the rescue, the final text exactly, nothing twice', async () => {
    const db = await createTestDatabase();
    dbs.push(db);
    const alice = await testToken('alice');
    const [a, b] = await startNodes(db.url, 'postgres', [
      { id: 'kill-st-a', worker: false },
      { id: 'kill-st-b', worker: true },
    ]);
    procs.push(a, b);
    const prompt = 'start over after a crash';
    const created = await post(a.url, alice, '/api/tasks', {
      type: 'generate',
      prompt,
      tokens: 600,
      interval_ms: 20,
    });
    const id = created.body.task_id;
    const onA = followOutput(ws(a), alice, id, 0);
    followers.push(onA);
    await waitFor(() => onA.deliveries.size >= 50, 'output flowing');
    const [c] = await startNodes(db.url, 'postgres', [{ id: 'kill-st-c', worker: true }]);
    procs.push(c);
    b.kill('SIGKILL');
    await b.exited;
    await onA.finished(60_000);
    const done = await status(a.url, alice, id);
    assert.equal(done.status, 'completed');
    assert.equal(done.attempt, 2);
    assert.ok(done.output.start >= 1_000_000, `the rescue started past a gap: ${done.output.start}`);
    assert.equal(onA.resets.at(-1)?.start, done.output.start, 'the client was told to start over');
    assert.equal(onA.text(), generatedText(prompt, 600), 'the text of the attempt that finished, once');
    assert.ok(
      [...onA.deliveries.values()].every((n) => n === 1),
      'no index delivered twice',
    );
    const json = await (
      await fetch(`${a.url}/api/tasks/${id}/output?format=json`, {
        headers: { authorization: `Bearer ${alice}` },
      })
    ).json();
    assert.equal(json.output.map((x: any) => x.data).join(''), generatedText(prompt, 600));
    assert.equal(json.start, done.output.start);
  });
});
