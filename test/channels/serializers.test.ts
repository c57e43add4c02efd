// The serializers on their own: V1 objects, V2 arrays, V2 binary pushes, vsn negotiation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { negotiateVersion } from '../../src/channels/serializers/serializer.ts';
import { v1 } from '../../src/channels/serializers/v1.ts';
import { v2 } from '../../src/channels/serializers/v2.ts';
import { binaryPush } from './wire.ts';

describe('vsn negotiation', () => {
  test('a missing vsn means V1, not V2', () => assert.equal(negotiateVersion(undefined), 1));
  test('any 1.0.x is V1 and any 2.0.x is V2', () => {
    assert.equal(negotiateVersion('1.0.0'), 1);
    assert.equal(negotiateVersion('1.0.7'), 1);
    assert.equal(negotiateVersion('2.0.0'), 2);
    assert.equal(negotiateVersion('2.0.1'), 2);
  });
  test('other versions, non-semver and non-strings are refused', () => {
    for (const vsn of ['3.0.0', '2.1.0', 'abc', '2', '2.0', '', '2.0.0-rc.1', null]) {
      assert.equal(negotiateVersion(vsn), undefined, String(vsn));
    }
  });
});

describe('V2 serializer', () => {
  test('decodes the first five elements and ignores extra ones', () => {
    assert.deepEqual(v2.decode('["1","2","task:x","phx_join",{"a":1},"extra"]'), {
      joinRef: '1',
      ref: '2',
      topic: 'task:x',
      event: 'phx_join',
      payload: { a: 1 },
    });
  });
  test('refuses non-arrays, short arrays, bad JSON and bad slot types', () => {
    for (const text of [
      'not json',
      '{"topic":"x"}',
      '["1","2"]',
      '[1,2,3,4]',
      '[{},"1","t","e",{}]',
      '[null,"1","t",5,{}]',
    ]) {
      assert.equal(v2.decode(text), undefined, text);
    }
  });
  test('keeps a non-string topic for routing (unmatched topic)', () => {
    assert.equal(v2.decode('[null,"1",42,"phx_join",{}]')?.topic, 42);
  });
  test('encodes [join_ref, ref, topic, event, payload] with refs verbatim', () => {
    assert.equal(
      v2.encode(null, '0', 'phoenix', 'phx_reply', { status: 'ok', response: {} }),
      '[null,"0","phoenix","phx_reply",{"status":"ok","response":{}}]',
    );
  });
  test('decodes a kind-0 binary push; empty join_ref and ref are null', () => {
    const msg = v2.decodeBinary(binaryPush('', '7', 'nosuch:x', 'e', Buffer.from([1, 2, 3])));
    assert.ok(msg && msg !== 'unsupported');
    assert.equal(msg.joinRef, null);
    assert.equal(msg.ref, '7');
    assert.equal(msg.topic, 'nosuch:x');
    assert.equal(msg.event, 'e');
    assert.deepEqual([...(msg.payload as Uint8Array)], [1, 2, 3]);
  });
  test('refuses other binary kinds and truncated frames', () => {
    assert.equal(v2.decodeBinary(binaryPush('', '7', 't', 'e', Buffer.alloc(0), 2)), 'unsupported');
    assert.equal(v2.decodeBinary(Buffer.from([0, 5, 5, 5])), undefined);
    assert.equal(v2.decodeBinary(Buffer.from([0, 9, 0, 0, 0, 1])), undefined);
    assert.equal(v2.decodeBinary(Buffer.from([0, 0, 0, 2, 0, 0xff, 0xfe])), undefined); // not UTF-8
  });
});

describe('V1 serializer', () => {
  test('needs topic, event, payload and ref; join_ref is optional', () => {
    assert.deepEqual(v1.decode('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}'), {
      joinRef: null,
      ref: '1',
      topic: 'phoenix',
      event: 'heartbeat',
      payload: {},
    });
    assert.equal(v1.decode('{"topic":"t","event":"e","payload":{},"ref":null,"join_ref":"3"}')?.joinRef, '3');
    assert.equal(v1.decode('{"topic":"t","event":"e","payload":{}}'), undefined);
    assert.equal(v1.decode('["1","1","t","e",{}]'), undefined);
  });
  test('output is an object without join_ref', () => {
    const out = JSON.parse(v1.encode('5', '6', 't', 'phx_reply', { status: 'ok', response: {} }));
    assert.deepEqual(out, {
      topic: 't',
      event: 'phx_reply',
      payload: { status: 'ok', response: {} },
      ref: '6',
    });
    assert.equal('join_ref' in out, false);
  });
  test('has no binary form', () =>
    assert.equal(v1.decodeBinary(binaryPush('', '1', 't', 'e', Buffer.alloc(0))), 'unsupported'));
});
