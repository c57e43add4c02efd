// Topic-keyed broadcast on one node, and the join window of a channel: a hub per topic with local
// subscribers, one faulty subscriber dropped alone, a lost feed told to every subscriber; events
// held between subscribing and the reply, then only newer ones, per key.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { PubSub, type TopicEvent, topicEvent } from '../../src/bus/index.ts';
import { JoinGate } from '../../src/channels/join-gate.ts';

const log = pino({ level: 'silent' });

function recorder() {
  const got: TopicEvent[] = [];
  const lost: string[] = [];
  return { got, lost, sub: { deliver: (e: TopicEvent) => got.push(e), lost: (t: string) => lost.push(t) } };
}

const ev = (
  topic: string,
  name: string,
  key: string,
  seq: number,
  cls: 'latest' | 'always' | 'ordered' = 'latest',
) => topicEvent(topic, name, { seq }, cls, key, seq);

describe('PubSub (one node)', () => {
  test('a hub exists exactly while its topic has subscribers; the same event object reaches each', async () => {
    const ps = new PubSub({ log });
    const a = recorder();
    const b = recorder();
    await ps.subscribe('t:1', a.sub);
    await ps.subscribe('t:1', b.sub);
    assert.equal(ps.wants('t:1'), true);
    assert.equal(ps.wants('t:2'), false);
    const e = ev('t:1', 'progress', 'k', 1);
    ps.publish(e);
    ps.publish(ev('t:2', 'progress', 'k', 1));
    assert.equal(a.got[0], e);
    assert.equal(b.got[0], e, 'shared, so it is encoded once per serializer');
    ps.unsubscribe('t:1', a.sub);
    assert.equal(ps.subscribers('t:1'), 1);
    ps.unsubscribe('t:1', b.sub);
    assert.deepEqual(ps.topics(), []);
  });

  test('a subscriber that throws is dropped alone', async () => {
    const ps = new PubSub({ log });
    const good = recorder();
    await ps.subscribe('t', {
      deliver: () => {
        throw new Error('boom');
      },
      lost: () => {},
    });
    await ps.subscribe('t', good.sub);
    ps.publish(ev('t', 'progress', 'k', 1));
    ps.publish(ev('t', 'progress', 'k', 2));
    assert.equal(good.got.length, 2);
    assert.equal(ps.subscribers('t'), 1);
  });

  test('lose tells every subscriber of the topic and frees it', async () => {
    const ps = new PubSub({ log });
    const a = recorder();
    const other = recorder();
    await ps.subscribe('t', a.sub);
    await ps.subscribe('u', other.sub);
    ps.lose('t');
    assert.deepEqual(a.lost, ['t']);
    assert.deepEqual(other.lost, []);
    assert.deepEqual(ps.topics(), ['u']);
  });
});

describe('JoinGate', () => {
  test('holds events until the state is known, then lets only newer ones through, in order', () => {
    const gate = new JoinGate();
    assert.equal(gate.admit(ev('t', 'progress', 'a', 4)), false);
    assert.equal(gate.admit(ev('t', 'progress', 'a', 5)), false);
    assert.equal(gate.admit(ev('t', 'completed', 'a', 6, 'always')), false);
    const out = gate.open([{ key: 'a', seq: 4 }]);
    assert.deepEqual(
      out.map((e) => [e.name, e.seq]),
      [
        ['progress', 5],
        ['completed', 6],
      ],
    );
    assert.equal(gate.admit(ev('t', 'progress', 'a', 6)), false, 'not newer: a duplicate or a stale node');
    assert.equal(gate.admit(ev('t', 'progress', 'a', 7)), true);
  });

  test('per key: a user topic carries many tasks, each with its own seq', () => {
    const gate = new JoinGate();
    gate.admit(ev('u', 'progress', 'a', 3));
    gate.admit(ev('u', 'progress', 'b', 1));
    const out = gate.open([
      { key: 'a', seq: 3 },
      { key: 'b', seq: 0 },
    ]);
    assert.deepEqual(
      out.map((e) => [e.key, e.seq]),
      [['b', 1]],
    );
    assert.equal(gate.admit(ev('u', 'created', 'c', 0, 'always')), true, 'a task not in the reply');
  });

  test('while held, every event is kept (a fast reader misses nothing); past the bound, progress is conflated', () => {
    const gate = new JoinGate();
    gate.admit(ev('t', 'progress', 'a', 2));
    gate.admit(ev('t', 'retrying', 'a', 3, 'always'));
    gate.admit(ev('t', 'progress', 'a', 4));
    const out = gate.open([{ key: 'a', seq: 1 }]);
    assert.deepEqual(
      out.map((e) => [e.name, e.seq]),
      [
        ['progress', 2],
        ['retrying', 3],
        ['progress', 4],
      ],
    );
    const flooded = new JoinGate();
    flooded.admit(ev('t', 'started', 'a', 1, 'always'));
    for (let seq = 2; seq <= 20_000; seq++) flooded.admit(ev('t', 'progress', 'a', seq));
    assert.equal(flooded.overflowed, false);
    const kept = flooded.open([{ key: 'a', seq: 0 }]);
    assert.ok(kept.length < 10_001, `bounded: ${kept.length} held`);
    assert.deepEqual(kept[0].name, 'started');
    assert.equal(kept.at(-1)?.seq, 20_000, 'the newest progress is always kept');
  });

  test('keys that take turns keep their own last seq (a user topic with two tasks)', () => {
    const gate = new JoinGate();
    gate.open([{ key: 'a', seq: 1 }]);
    const pass = (key: string, seq: number) => gate.admit(ev('u', 'progress', key, seq));
    assert.equal(pass('a', 1), false, 'the state already had a 1');
    assert.equal(pass('a', 2), true);
    assert.equal(pass('a', 3), true);
    assert.equal(pass('b', 1), true);
    assert.equal(pass('a', 3), false, "a's 3 again, after b took over as the newest key");
    assert.equal(pass('a', 2), false);
    assert.equal(pass('b', 1), false);
    assert.equal(pass('b', 2), true);
    assert.equal(pass('a', 4), true);
    assert.equal(pass('b', 2), false, "b's seq survives a's turn");
  });

  test('ordered events (output) pass by index, not seq', () => {
    const gate = new JoinGate();
    gate.open([{ key: 'a', seq: 10 }]);
    assert.equal(gate.admit(ev('t', 'output', 'a', 0, 'ordered')), true);
  });
});
