// The frame format, the outbox's packing and the inbox's reading, without an engine: every frame
// fits the limit, whatever the messages; what goes in comes out, in order; gaps are counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Counters } from '../../src/bus/transports/counters.ts';
import { messagesFrame, parseFrame, partFrame, refFrame } from '../../src/bus/transports/frame.ts';
import { Inbox } from '../../src/bus/transports/inbox.ts';
import { Outbox, type OutFrame } from '../../src/bus/transports/outbox.ts';

/** Packs `messages` (one publish per entry, one turn) with a frame limit; resolves with the frames. */
function pack(
  messages: string[],
  maxFrameBytes: number,
  large: 'parts' | 'reference' = 'parts',
): Promise<OutFrame[]> {
  return new Promise((resolve) => {
    const out = new Outbox({ publisher: 'pubX', maxFrameBytes: () => maxFrameBytes, large, send: resolve });
    for (const m of messages) out.push('all', [m]);
  });
}

function read(frames: OutFrame[], maxFrameBytes: number): { messages: string[]; counters: Counters } {
  const counters = new Counters();
  const inbox = new Inbox({ counters, maxFrameBytes: () => maxFrameBytes });
  const messages: string[] = [];
  for (const f of frames) {
    const got = inbox.accept(f.channel, f.data);
    if (got && 'messages' in got) messages.push(...got.messages);
  }
  return { messages, counters };
}

test('frames never pass the limit and carry every message, in order, whatever the sizes', async () => {
  const text = fc.string({ unit: 'grapheme', maxLength: 700 }).map((s) => JSON.stringify(s));
  await fc.assert(
    fc.asyncProperty(
      fc.array(text, { minLength: 1, maxLength: 60 }),
      fc.integer({ min: 200, max: 3000 }),
      async (messages, limit) => {
        const frames = await pack(messages, limit);
        for (const f of frames) {
          const bytes = typeof f.data === 'string' ? Buffer.byteLength(f.data) : f.data.length;
          assert.equal(f.bytes, bytes, 'the byte count is exact');
          assert.ok(bytes <= limit, `frame of ${bytes} bytes under ${limit}`);
        }
        const { messages: got, counters } = read(frames, limit);
        assert.deepEqual(got, messages);
        assert.equal(counters.dropped + counters.gaps, 0);
      },
    ),
    { numRuns: 200 },
  );
});

test('a raw newline in a message becomes a space, so the JSON value is unchanged', async () => {
  const pretty = JSON.stringify({ a: [1, 2], b: 'x' }, null, 2);
  const frames = await pack([pretty, '"next"'], 8000);
  const { messages } = read(frames, 8000);
  assert.equal(messages.length, 2);
  assert.deepEqual(JSON.parse(messages[0]), { a: [1, 2], b: 'x' });
});

test('a message larger than a frame: parts, or one reference frame carrying the body to store', async () => {
  const big = JSON.stringify('é'.repeat(5000));
  const parts = await pack([big], 1000);
  assert.ok(parts.length >= 10);
  assert.deepEqual(read(parts, 1000).messages, [big]);
  const [ref] = await pack([big], 1000, 'reference');
  assert.equal(ref.spill?.body, big);
  assert.deepEqual(parseFrame(ref.data), {
    kind: 'r',
    publisher: 'pubX',
    seq: 1,
    count: 1,
    ref: ref.spill!.ref,
  });
});

test('the inbox counts a jump in a publisher counter as a gap, drops repeats, and abandons a broken part run', () => {
  const counters = new Counters();
  const inbox = new Inbox({ counters, maxFrameBytes: () => 10_000 });
  assert.deepEqual(inbox.accept('all', messagesFrame('p1', 3, ['1'])), { messages: ['1'] });
  assert.equal(inbox.accept('all', messagesFrame('p1', 3, ['1'])), undefined);
  assert.deepEqual(inbox.accept('all', messagesFrame('p1', 6, ['2'])), { messages: ['2'] });
  assert.equal(counters.gaps, 2);
  assert.equal(counters.dropped, 1);
  // Counters are per channel: the same publisher on another channel starts afresh.
  assert.deepEqual(inbox.accept('node.x', messagesFrame('p1', 1, ['3'])), { messages: ['3'] });
  assert.equal(inbox.accept('all', partFrame('p1', 7, 0, 3, Buffer.from('"ab'))), undefined);
  assert.equal(inbox.accept('all', partFrame('p1', 9, 2, 3, Buffer.from('c"'))), undefined);
  assert.equal(counters.gaps, 3, 'the lost middle part is a gap');
  assert.equal(counters.dropped, 3, 'the abandoned message and the orphan last part');
  assert.deepEqual(inbox.accept('all', refFrame('p1', 10, 2, 'p1.1')), { ref: 'p1.1', count: 2 });
  assert.equal(counters.framesIn, 7);
});

test('the outbox refuses messages past its bound while a send is in flight, and says how many', async () => {
  let release: () => void = () => {};
  const sent: OutFrame[][] = [];
  const out = new Outbox({
    publisher: 'pubY',
    maxFrameBytes: () => 1000,
    large: 'parts',
    maxQueued: 10,
    send: (frames) => {
      sent.push(frames);
      // The first send is held until the test releases it.
      if (sent.length > 1) return;
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    },
  });
  assert.equal(out.push('all', ['1', '2']), 0);
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, 1, 'the first flush is in flight');
  assert.equal(
    out.push(
      'all',
      Array.from({ length: 8 }, () => '3'),
    ),
    0,
  );
  assert.equal(out.push('all', ['4', '5', '6']), 1, 'two fit, one is refused');
  assert.equal(out.queued, 10);
  release();
  await out.drain(1000);
  assert.equal(sent.length, 2);
  assert.deepEqual(read(sent.flat(), 1000).messages.length, 12);
});
