// Streamed output through a real server (real PostgreSQL, the official phoenix client, SSE over
// HTTP): the `generate` type's exact text live and after the fact, resume by index from a finished
// task, SSE with Last-Event-ID, the whole output as JSON, a retry that starts over, storable
// chunks, limits, bounded database writes, and one task's unstorable segment never failing
// another's.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Socket } from 'phoenix';
import { defineTask, generatedText } from '../../src/tasks/index.ts';
import { followOutput } from '../helpers/output-follower.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const flaky = defineTask({
  name: 'flaky_output',
  async run(ctx) {
    const n = ctx.attempt === 1 ? 3 : 2;
    for (let i = 0; i < n; i++) ctx.output(`a${ctx.attempt}-${i} `);
    if (ctx.attempt === 1) throw new Error('first attempt fails');
    return 'ok';
  },
});
const weird = defineTask({
  name: 'weird_output',
  async run(ctx) {
    ctx.output('half \ud800');
    ctx.output('cut \u0000 here');
    ctx.output({ nested: ['😀', 1, null], ok: true });
    return 'done';
  },
});
const huge = defineTask({
  name: 'huge_chunk',
  maxAttempts: 3,
  async run(ctx) {
    ctx.output('x'.repeat(5000));
    return 'unreachable';
  },
});
let poisonStarted = false;
const poisoned = defineTask({
  name: 'poisoned_output',
  maxAttempts: 1,
  async run(ctx) {
    poisonStarted = true;
    for (let i = 0; i < 50; i++) {
      ctx.output(`p${i}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return 'unreachable';
  },
});

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({
    tasks: [flaky, weird, huge, poisoned],
    config: { outputChunkBytes: 1024, outputFlushMs: 50 },
  });
  token = await t.token('alice');
});
after(() => t.stop());

/** Reads an SSE response to its end (or `limit` events): the events and the raw id lines. */
async function readSse(
  path: string,
  headers: Record<string, string> = {},
  limit = Infinity,
): Promise<Array<{ id?: string; event: string; data: any }>> {
  const controller = new AbortController();
  const res = await fetch(`${t.url}${path}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const events: Array<{ id?: string; event: string; data: any }> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body!.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf('\n\n');
      while (cut !== -1) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        cut = buffer.indexOf('\n\n');
        if (block.startsWith(':')) continue;
        const e: { id?: string; event: string; data: any } = { event: 'message', data: undefined };
        for (const line of block.split('\n')) {
          const at = line.indexOf(': ');
          const [k, v] = [line.slice(0, at), line.slice(at + 2)];
          if (k === 'id') e.id = v;
          else if (k === 'event') e.event = v;
          else if (k === 'data') e.data = JSON.parse(v);
        }
        events.push(e);
        if (events.length >= limit) return events;
      }
    }
  } finally {
    controller.abort();
  }
  return events;
}

describe('streamed output', () => {
  test('generate: a follower assembles the exact text live; the result says its length', async () => {
    const prompt = 'the quick  brown\tfox';
    const task = await t.createTask(token, { type: 'generate', prompt, tokens: 40, interval_ms: 5 });
    const f = followOutput(t.wsUrl, token, task.task_id);
    try {
      await f.finished();
      assert.equal(f.text(), generatedText(prompt, 40));
      const done = await t.waitForStatus(token, task.task_id, ['completed']);
      assert.deepEqual(done.result, { tokens: 40, length: generatedText(prompt, 40).length });
      assert.deepEqual(done.output, { start: 0, next: 40 });
      assert.equal(generatedText('a b', 3), 'a b a', "api.md's example");
    } finally {
      f.close();
    }
  });

  test('a finished task: output_from resumes from the database, exactly the chunks asked for', async () => {
    const task = await t.createTask(token, {
      type: 'generate',
      prompt: 'one two three',
      tokens: 25,
      interval_ms: 0,
    });
    await t.waitForStatus(token, task.task_id, ['completed']);
    const whole = generatedText('one two three', 25);
    const all = followOutput(t.wsUrl, token, task.task_id, 0);
    const tail = followOutput(t.wsUrl, token, task.task_id, 20);
    try {
      await all.finished();
      await tail.finished();
      assert.equal(all.text(), whole);
      assert.deepEqual([...tail.deliveries.keys()], [20, 21, 22, 23, 24], 'nothing below output_from');
      for (const f of [all, tail]) assert.ok([...f.deliveries.values()].every((n) => n === 1));
    } finally {
      all.close();
      tail.close();
    }
  });

  test('SSE: the whole stream then `end`; Last-Event-ID and ?from= resume; ?format=json at once', async () => {
    const task = await t.createTask(token, {
      type: 'generate',
      prompt: 'sse works',
      tokens: 30,
      interval_ms: 3,
    });
    const events = await readSse(`/api/tasks/${task.task_id}/output`);
    const chunks = events.filter((e) => e.event === 'output');
    assert.equal(chunks.map((e) => e.data.data).join(''), generatedText('sse works', 30));
    assert.deepEqual(
      chunks.map((e) => e.id),
      chunks.map((_, i) => String(i)),
      'id is the index',
    );
    const end = events.at(-1)!;
    assert.equal(end.event, 'end');
    assert.equal(end.data.status, 'completed');
    assert.deepEqual(end.data.output, { start: 0, next: 30 });
    const resumed = await readSse(`/api/tasks/${task.task_id}/output`, { 'last-event-id': '24' });
    assert.deepEqual(
      resumed.filter((e) => e.event === 'output').map((e) => e.data.index),
      [25, 26, 27, 28, 29],
    );
    const from = await readSse(`/api/tasks/${task.task_id}/output?from=28`);
    assert.deepEqual(
      from.filter((e) => e.event === 'output').map((e) => e.data.index),
      [28, 29],
    );
    const json = await t.api(token, 'GET', `/api/tasks/${task.task_id}/output?format=json`);
    assert.equal(json.status, 200);
    assert.equal(json.body.output.length, 30);
    assert.deepEqual(
      { start: json.body.start, next: json.body.next, done: json.body.done },
      { start: 0, next: 30, done: true },
    );
    assert.deepEqual(json.body.output[1], { index: 1, data: 'works ', attempt: 1 });
    const bad = await t.api(token, 'GET', `/api/tasks/${task.task_id}/output?from=-1`);
    assert.equal(bad.status, 422);
    const other = await t.api(
      await t.token('mallory'),
      'GET',
      `/api/tasks/${task.task_id}/output?format=json`,
    );
    assert.equal(other.status, 404);
  });

  test('SSE live: a reader that joins mid-stream gets the rest, then end', async () => {
    const task = await t.createTask(token, {
      type: 'generate',
      prompt: 'live stream',
      tokens: 60,
      interval_ms: 10,
    });
    await waitFor(
      async () => (await t.api(token, 'GET', `/api/tasks/${task.task_id}`)).body.output.next >= 10,
      'ten chunks out',
    );
    const events = await readSse(`/api/tasks/${task.task_id}/output`);
    const indexes = events.filter((e) => e.event === 'output').map((e) => e.data.index);
    assert.deepEqual(
      indexes,
      Array.from({ length: 60 }, (_, i) => i),
    );
    assert.equal(events.at(-1)!.event, 'end');
  });

  test('a retry starts its output over: output_reset, indexes keep rising, chunks below start are void', async () => {
    const task = await t.createTask(token, { type: 'flaky_output' });
    const f = followOutput(t.wsUrl, token, task.task_id);
    try {
      await f.finished();
      const done = await t.waitForStatus(token, task.task_id, ['completed']);
      assert.deepEqual(done.output, { start: 3, next: 5 });
      assert.equal(f.text(), 'a2-0 a2-1 ');
      const json = await t.api(token, 'GET', `/api/tasks/${task.task_id}/output?format=json`);
      assert.deepEqual(
        json.body.output.map((c: any) => [c.index, c.data, c.attempt]),
        [
          [3, 'a2-0 ', 2],
          [4, 'a2-1 ', 2],
        ],
      );
    } finally {
      f.close();
    }
  });

  test('chunks PostgreSQL cannot store are stored and sent as U+FFFD; what was sent is what is kept', async () => {
    const task = await t.createTask(token, { type: 'weird_output' });
    const events = await readSse(`/api/tasks/${task.task_id}/output`);
    const live = events.filter((e) => e.event === 'output').map((e) => e.data.data);
    assert.deepEqual(live, ['half \uFFFD', 'cut \uFFFD here', { nested: ['😀', 1, null], ok: true }]);
    const stored = await t.api(token, 'GET', `/api/tasks/${task.task_id}/output?format=json`);
    assert.deepEqual(
      stored.body.output.map((c: any) => c.data),
      live,
    );
  });

  test('a chunk over the limit fails the attempt with an error naming the limit, not retried', async () => {
    const task = await t.createTask(token, { type: 'huge_chunk' });
    const done = await t.waitForStatus(token, task.task_id, ['failed']);
    assert.match(done.error.message, /TASKWIRE_OUTPUT_CHUNK_BYTES \(1024\)/);
    assert.equal(done.attempt, 1, 'the same output would fail again: no retry');
  });

  test('10,000 chunks take a bounded number of database writes', async () => {
    await t.server.pool.query(`
      create table if not exists output_writes (tbl text, op text);
      create or replace function log_output_write() returns trigger language plpgsql as $$
        begin insert into output_writes values (tg_table_name, tg_op); return null; end $$;
      drop trigger if exists log_output on taskwire.task_output;
      create trigger log_output after insert or update on taskwire.task_output
        for each row execute function log_output_write();`);
    const task = await t.createTask(token, { type: 'generate', prompt: 'w', tokens: 10_000, interval_ms: 0 });
    const done = await t.waitForStatus(token, task.task_id, ['completed'], 30_000);
    assert.equal(done.output.next, 10_000);
    const { rows } = await t.server.pool.query<{ n: string }>('select count(*) as n from output_writes');
    const segments = Number(rows[0].n);
    console.log(`# 10,000 chunks: ${segments} output rows (segments)`);
    assert.ok(segments <= 60, `at most 60 rows for 10,000 chunks, got ${segments}`);
    const json = await t.api(token, 'GET', `/api/tasks/${task.task_id}/output?format=json`);
    assert.equal(json.body.output.length, 10_000);
    assert.equal(json.body.output.map((c: any) => c.data).join(''), generatedText('w', 10_000));
    await t.server.pool.query('drop trigger log_output on taskwire.task_output');
  });

  test("one task's segment that the database refuses fails that task alone; another's chunks in the same flushes are stored", async () => {
    await t.server.pool.query(`
      create or replace function refuse_poison() returns trigger language plpgsql as $$
        begin
          if new.chunks @> '["p3"]'::jsonb then raise exception 'poisoned segment'; end if;
          return new;
        end $$;
      drop trigger if exists refuse_poison on taskwire.task_output;
      create trigger refuse_poison before insert on taskwire.task_output
        for each row execute function refuse_poison();`);
    try {
      poisonStarted = false;
      const bad = await t.createTask(token, { type: 'poisoned_output' });
      await waitFor(() => poisonStarted, 'the poisoned task to start');
      const good = await t.createTask(token, {
        type: 'generate',
        prompt: 'fine',
        tokens: 40,
        interval_ms: 5,
      });
      const failed = await t.waitForStatus(token, bad.task_id, ['failed'], 15_000);
      assert.match(failed.error.message, /output could not be stored: poisoned segment/);
      const ok = await t.waitForStatus(token, good.task_id, ['completed'], 15_000);
      assert.equal(ok.output.next, 40);
      const json = await t.api(token, 'GET', `/api/tasks/${good.task_id}/output?format=json`);
      assert.equal(json.body.output.map((c: any) => c.data).join(''), generatedText('fine', 40));
    } finally {
      await t.server.pool.query('drop trigger refuse_poison on taskwire.task_output');
    }
  });

  test('bad input: output_from that is not an integer >= 0 is refused; generate needs a prompt', async () => {
    const task = await t.createTask(token, { type: 'generate', prompt: 'x', tokens: 1, interval_ms: 0 });
    const socket = new Socket(t.wsUrl, { params: { token } });
    socket.connect();
    try {
      for (const output_from of [-1, 1.5, 'x']) {
        const refused = await new Promise<any>((resolve, reject) => {
          socket
            .channel(`task:${task.task_id}`, { output_from })
            .join()
            .receive('error', resolve)
            .receive('ok', () => reject(new Error(`output_from ${output_from} was accepted`)));
        });
        assert.match(refused.reason, /output_from/);
      }
    } finally {
      socket.disconnect();
    }
    for (const body of [
      { type: 'generate' },
      { type: 'generate', prompt: '   ' },
      { type: 'generate', prompt: 'x', tokens: 0 },
    ]) {
      const res = await t.api(token, 'POST', '/api/tasks', body);
      assert.equal(res.status, 422, JSON.stringify(body));
    }
  });
});
