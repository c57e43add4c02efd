// A task handle's streamed output, fed by hand as the client would feed it: chunks apply once in
// index order, a reset voids what came before its start (and says so once), the output ends only
// when the task has ended AND its last chunk is in, and iterators drain, end, throw or stop as
// documented.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type OutputItem, type Task, TaskHandle, TaskwireError } from '../../src/client/index.ts';
import type { TaskFeed } from '../../src/client/task-handle.ts';
import { taskFixture } from '../helpers/task-fixture.ts';

const ID = '01900000-0000-7000-8000-000000000002';

function task(over: Partial<Task> = {}): Task {
  return taskFixture({ task_id: ID, type: 'generate', ...over });
}

/** `outputFrom` null: the output is not followed. */
function handle(initial = task(), outputFrom: number | null = 0) {
  let feed!: TaskFeed;
  const released: string[] = [];
  const h = new TaskHandle(
    initial,
    {
      cancel: async () => initial,
      release: (id) => released.push(id),
      listenerError: (e) => assert.fail(String(e)),
    },
    (f) => {
      feed = f;
    },
    outputFrom ?? undefined,
  );
  const heard: string[] = [];
  h.on('output', (c) => heard.push(`${c.index}:${c.data}`));
  h.on('output_reset', (r) => heard.push(`reset@${r.start}`));
  return { h, feed, released, heard };
}

const chunk = (index: number, data: unknown, attempt = 1) => ({ task_id: ID, index, data, attempt });
const done = (seq: number) => ({
  task_id: ID,
  status: 'completed',
  progress: 1,
  message: null,
  seq,
  attempt: 1,
  at: 0,
  result: null,
});

/** Reads an iterator to its end (bounded), rendering each item. */
async function drain(it: AsyncIterator<OutputItem>, max = 1000): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < max; i++) {
    const r = await it.next();
    if (r.done) return seen;
    seen.push(r.value.kind === 'chunk' ? `${r.value.index}:${r.value.data}` : `reset@${r.value.start}`);
  }
  throw new Error('the iterator did not end');
}

test('chunks apply once, in index order: duplicates dropped, a gap reported and not applied', () => {
  const { h, feed, heard } = handle();
  assert.equal(feed.outputFrom(), 0);
  assert.equal(feed.output(chunk(0, 'a ')), 'applied');
  assert.equal(feed.output(chunk(1, 'b ')), 'applied');
  assert.equal(feed.output(chunk(1, 'b ')), 'duplicate');
  assert.equal(feed.output(chunk(0, 'a ')), 'duplicate');
  assert.equal(feed.output(chunk(3, 'd')), 'gap');
  assert.equal(feed.outputFrom(), 2, 'a rejoin asks for exactly what is missing');
  assert.equal(feed.output(chunk(2, { n: 1 })), 'applied');
  assert.equal(h.text, 'a b {"n":1}', 'JSON chunks as JSON text');
  assert.deepEqual(
    h.chunks.map((c) => c.index),
    [0, 1, 2],
  );
  assert.deepEqual(heard, ['0:a ', '1:b ', '2:[object Object]']);
  assert.deepEqual(h.outputPosition, { start: 0, next: 3, complete: false });
  const before = h.chunks;
  assert.equal(h.chunks, before, 'the same snapshot until something changes');
  feed.output(chunk(3, 'd'));
  assert.notEqual(h.chunks, before);
  assert.equal(before.length, 3, 'a snapshot handed out never changes');
  assert.ok(Object.isFrozen(before));
});

test('a reset voids what came before its start: one reset item, the text cleared, then the new chunks', async () => {
  const { h, feed, heard } = handle();
  const it = h.output();
  feed.output(chunk(0, 'old '));
  feed.output(chunk(1, 'text'));
  feed.outputReset({ task_id: ID, attempt: 2, start: 2 });
  feed.outputReset({ task_id: ID, attempt: 2, start: 2 }); // the same news again: nothing
  assert.equal(h.text, '');
  assert.equal(feed.output(chunk(1, 'text')), 'void', 'below start');
  feed.output(chunk(2, 'new', 2));
  feed.event('completed', done(2));
  assert.deepEqual(await drain(it), ['reset@2', '2:new'], 'queued chunks the reset voided are never yielded');
  assert.equal(h.text, 'new');
  assert.deepEqual(heard, ['0:old ', '1:text', 'reset@2', '2:new']);
});

test('an iterator that yielded chunks gets the reset marker before the new chunks', async () => {
  const { h, feed } = handle();
  const it = h.output();
  feed.output(chunk(0, 'old'));
  assert.deepEqual((await it.next()).value, { kind: 'chunk', index: 0, data: 'old', attempt: 1 });
  feed.outputReset({ task_id: ID, attempt: 2, start: 1 });
  feed.output(chunk(1, 'new', 2));
  feed.event('completed', done(2));
  assert.deepEqual(await drain(it), ['reset@1', '1:new']);
});

test("a rejoin's reply with a later start is a reset; with nothing held it only moves the resume index", () => {
  const held = handle();
  held.feed.output(chunk(0, 'x'));
  held.feed.snapshot(task({ seq: 5, attempt: 2, output: { start: 7, next: 9 } }));
  assert.deepEqual(held.heard, ['0:x', 'reset@7']);
  assert.equal(held.feed.outputFrom(), 7, 'then the new attempt from its start');

  const empty = handle(task({ output: { start: 4, next: 6 } }));
  assert.equal(empty.feed.outputFrom(), 4, 'the valid output starts at 4');
  empty.feed.snapshot(task({ seq: 2, output: { start: 4, next: 6 } }));
  assert.deepEqual(empty.heard, [], 'no reset: nothing was held');
});

test('resuming from a stored index: a reset only when the start passes it (what the consumer held is void)', () => {
  const same = handle(task({ output: { start: 3, next: 10 } }), 8);
  assert.deepEqual(same.heard, [], 'start 3 < 8: the stored chunks 3..7 are still valid');
  assert.equal(same.feed.outputFrom(), 8);
  const later = handle(task({ output: { start: 0, next: 8 } }), 8);
  later.feed.snapshot(task({ seq: 3, attempt: 2, output: { start: 12, next: 12 } }));
  assert.deepEqual(later.heard, ['reset@12'], 'start 12 >= 8: the stored text is void');
});

test('the output ends when the task has ended and its last chunk is in; only then is the channel left', async () => {
  const { h, feed, released } = handle();
  const it = h.output();
  feed.output(chunk(0, 'a'));
  // A rejoin's reply: the task completed meanwhile with 3 chunks; 1 and 2 follow the reply.
  feed.snapshot(task({ seq: 9, status: 'completed', progress: 1, output: { start: 0, next: 3 } }));
  assert.equal(h.done, true);
  assert.equal(h.outputPosition.complete, false);
  assert.deepEqual(released, [], 'the channel stays for the backlog');
  assert.equal(feed.pending(), true);
  feed.output(chunk(1, 'b'));
  feed.output(chunk(2, 'c'));
  assert.deepEqual(released, [ID]);
  assert.equal(feed.pending(), false);
  assert.deepEqual(await drain(it), ['0:a', '1:b', '2:c']);
  assert.deepEqual(await drain(h.output()), ['0:a', '1:b', '2:c'], 'a later iterator replays what is held');
});

test('a live terminal event ends the output where it stands', async () => {
  const { h, feed, released } = handle();
  const it = h.output();
  const first = it.next(); // waiting before anything arrived
  feed.output(chunk(0, 'only'));
  assert.equal((await first).value?.kind, 'chunk');
  feed.event('completed', done(2));
  assert.deepEqual(await it.next(), { value: undefined, done: true });
  assert.deepEqual(released, [ID]);
});

test('when the client stops following first, an iterator yields what it holds, then throws', async () => {
  const { h, feed } = handle();
  const it = h.output();
  feed.output(chunk(0, 'a'));
  feed.end(new TaskwireError('closed', 'the client was closed'));
  assert.deepEqual((await it.next()).value, { kind: 'chunk', index: 0, data: 'a', attempt: 1 });
  await assert.rejects(it.next(), { code: 'closed' });
  const later = h.output();
  assert.equal((await later.next()).value?.kind, 'chunk', 'a new iterator too: what is held, then the error');
  await assert.rejects(later.next(), { code: 'closed' });
});

test('break stops an iterator; an abort signal rejects it; output: false has no output', async () => {
  const { h, feed } = handle();
  const seen: number[] = [];
  feed.output(chunk(0, 'a'));
  feed.output(chunk(1, 'b'));
  for await (const item of h.output()) {
    if (item.kind === 'chunk') seen.push(item.index);
    break;
  }
  assert.deepEqual(seen, [0]);
  const controller = new AbortController();
  const it = h.output({ signal: controller.signal });
  await it.next();
  await it.next();
  const pending = it.next();
  controller.abort(new Error('gone'));
  await assert.rejects(pending, /gone/);
  await assert.rejects(it.next(), /gone/);

  const off = handle(task(), null);
  assert.throws(() => off.h.output(), { code: 'output_off' });
  assert.equal(off.feed.outputFrom(), undefined, 'the join asks for no output');
  assert.equal(off.h.text, '');
});

test('a finished task whose output is all known ends at once and is not joined', () => {
  const { h, feed } = handle(task({ status: 'completed', output: { start: 0, next: 0 } }));
  assert.equal(feed.pending(), false);
  assert.equal(h.outputPosition.complete, true);
  const withOutput = handle(task({ status: 'completed', output: { start: 0, next: 5 } }));
  assert.equal(withOutput.feed.pending(), true, 'its 5 chunks are fetched through the channel');
  const fromStored = handle(task({ status: 'failed', output: { start: 0, next: 5 } }), 5);
  assert.equal(fromStored.feed.pending(), false, 'the consumer holds them all already');
});

test('listeners of the last chunk and of the end see the output complete', () => {
  const live = handle();
  const seen: boolean[] = [];
  live.h.on('update', () => seen.push(live.h.outputPosition.complete));
  live.feed.output(chunk(0, 'a'));
  live.feed.event('completed', done(2));
  assert.deepEqual(seen, [true], 'the terminal update');

  const caught = handle();
  const last: boolean[] = [];
  caught.h.on('output', () => last.push(caught.h.outputPosition.complete));
  caught.feed.snapshot(task({ seq: 9, status: 'completed', output: { start: 0, next: 2 } }));
  caught.feed.output(chunk(0, 'a'));
  caught.feed.output(chunk(1, 'b'));
  assert.deepEqual(last, [false, true], 'the last chunk of a backlog');
});
