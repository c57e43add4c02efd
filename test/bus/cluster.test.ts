// The cluster protocol over an in-process engine (several nodes in this test process, one
// MemoryBroker): interest acknowledged before a join reads state, events only to nodes that want
// them, a starting node learning what the others want, peers that go silent, a bus outage (remote
// feeds lost, then resynchronised), forged messages, and request/reply between nodes.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { Cluster, PubSub, type TopicEvent, topicEvent } from '../../src/bus/index.ts';
import { MemoryBroker, MemoryTransport } from '../../src/bus/transports/index.ts';
import { waitFor } from '../helpers/wait.ts';

const log = pino({ level: 'silent' });
const nodes: PubSub[] = [];
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

interface Node {
  id: string;
  pubsub: PubSub;
  cluster: Cluster;
  transport: MemoryTransport;
  availability: boolean[];
}

async function node(
  broker: MemoryBroker,
  id: string,
  opts: { expect?: string[]; beatMs?: number; local?: (t: string) => boolean } = {},
): Promise<Node> {
  const transport = new MemoryTransport({ broker, namespace: 'test', log });
  // Fast beats, but a dead-after that a loaded machine's event-loop stalls never reach.
  const cluster = new Cluster({
    nodeId: id,
    transport,
    log,
    beatMs: opts.beatMs ?? 50,
    deadAfterMs: 1500,
    ackTimeoutMs: 500,
  });
  const pubsub = new PubSub({ cluster, log, isLocalFeed: opts.local });
  const availability: boolean[] = [];
  pubsub.onAvailability = (up) => availability.push(up);
  await pubsub.start(opts.expect ?? []);
  nodes.push(pubsub);
  return { id, pubsub, cluster, transport, availability };
}

function recorder() {
  const got: TopicEvent[] = [];
  const lost: string[] = [];
  return { got, lost, sub: { deliver: (e: TopicEvent) => got.push(e), lost: (t: string) => lost.push(t) } };
}

const progress = (topic: string, seq: number) => topicEvent(topic, 'progress', { seq }, 'latest', 'k', seq);

describe('cluster protocol', () => {
  test('an interest is acknowledged by every live node before subscribe resolves; events go only where wanted', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a');
    const b = await node(broker, 'b', { expect: ['a'] });
    const c = await node(broker, 'c', { expect: ['a', 'b'] });
    await waitFor(
      () => a.cluster.peers().length === 2 && b.cluster.peers().length === 2,
      'everyone knows everyone',
    );
    const onB = recorder();
    await b.pubsub.subscribe('task:1', onB.sub);
    // Resolved: a and c know b wants it, with no further round trip.
    assert.equal(a.pubsub.wants('task:1'), true);
    assert.equal(c.pubsub.wants('task:1'), true);
    a.pubsub.publish(progress('task:1', 1));
    a.pubsub.publish(progress('task:2', 1)); // nobody wants it: it never leaves a
    await waitFor(() => onB.got.length === 1, 'the event on b');
    assert.equal(onB.got[0].name, 'progress');
    assert.equal(onB.got[0].topic, 'task:1');
    assert.equal(a.cluster.stats().eventsOut, 1, 'one event sent, to b only');
    b.pubsub.unsubscribe('task:1', onB.sub);
    await waitFor(() => !a.pubsub.wants('task:1'), 'a learns b no longer wants it');
    a.pubsub.publish(progress('task:1', 2));
    assert.equal(a.cluster.stats().eventsOut, 1, 'nothing sent after the unsubscribe');
  });

  test('a lone node publishes nothing on the bus; a starting node first hears what the others want', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'lone');
    const sub = recorder();
    await a.pubsub.subscribe('user:x', sub.sub);
    for (let i = 0; i < 100; i++) a.pubsub.publish(progress('user:x', i));
    assert.equal(a.cluster.stats().eventsOut, 0);
    assert.equal(sub.got.length, 100, 'local subscribers are served directly');
    const late = await node(broker, 'late', { expect: ['lone'] });
    assert.equal(late.pubsub.wants('user:x'), true, 'known by the time start() resolved');
  });

  test('events from one node arrive in order; a node gone silent loses its interest', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a2');
    const b = await node(broker, 'b2', { expect: ['a2'] });
    const got = recorder();
    await b.pubsub.subscribe('task:9', got.sub);
    for (let i = 1; i <= 2000; i++) a.pubsub.publish(progress('task:9', i));
    await waitFor(() => got.got.length === 2000, 'all 2000');
    assert.deepEqual(
      got.got.map((e) => e.seq),
      Array.from({ length: 2000 }, (_, i) => i + 1),
    );
    broker.disconnect(b.transport); // b goes silent (as if killed): a hears no more beats
    await waitFor(() => !a.pubsub.wants('task:9'), 'a drops the silent peer', 5000);
    assert.deepEqual(a.cluster.peers(), []);
  });

  test('a node back from a pause learns it was dropped: the feeds it missed are lost (rejoin), its interest is restored', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a6', { local: (t) => t === 'task:runs-on-a' });
    const b = await node(broker, 'b6', { expect: ['a6'] });
    const fed = recorder();
    const first = recorder();
    const own = recorder();
    await b.pubsub.subscribe('task:runs-on-a', fed.sub);
    await b.pubsub.subscribe('task:no-event-yet', first.sub);
    await a.pubsub.subscribe('task:runs-on-a', own.sub);
    a.pubsub.publish(progress('task:runs-on-a', 1));
    await waitFor(() => fed.got.length === 1, 'b fed by a');
    broker.pause(b.transport); // b's process stops: a hears no beats, b hears nothing
    await waitFor(() => !a.pubsub.wants('task:no-event-yet'), 'a drops the silent b', 5000);
    a.pubsub.publish(topicEvent('task:runs-on-a', 'completed', { seq: 2 }, 'always', 'k', 2)); // not sent to b
    broker.resume(b.transport);
    await waitFor(() => fed.lost.length === 1, 'b told its feed from a broke', 5000);
    assert.deepEqual(fed.lost, ['task:runs-on-a'], 'the follower of a task fed by a rejoins');
    assert.deepEqual(first.lost, ['task:no-event-yet'], 'so does one whose first events may have gone');
    assert.equal(fed.got.length, 1, 'the end a sent while b was dropped never came');
    assert.deepEqual(own.lost, [], "a's own task keeps its local subscribers");
    const again = recorder();
    await b.pubsub.subscribe('task:runs-on-a', again.sub);
    await waitFor(() => a.pubsub.wants('task:runs-on-a'), 'a knows b wants it again');
    a.pubsub.publish(progress('task:runs-on-a', 3));
    await waitFor(() => again.got.length === 1, 'delivery to b resumed');
  });

  test('a node back from a pause tells those it dropped: a topic it shares with a third node is lost too', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a7');
    const b = await node(broker, 'b7', { expect: ['a7'] });
    const c = await node(broker, 'c7', { expect: ['a7', 'b7'] });
    const shared = recorder();
    await b.pubsub.subscribe('user:u', shared.sub);
    await waitFor(() => a.pubsub.wants('user:u') && c.pubsub.wants('user:u'), 'a and c know b wants it');
    c.pubsub.publish(progress('user:u', 1)); // b's feed of the user's topic was last fed by c
    await waitFor(() => shared.got.length === 1, 'b fed by c');
    broker.pause(a.transport); // a stalls: on its return it has taken b and c for dead
    await waitFor(() => a.cluster.peers().length === 0, 'a drops its silent peers', 5000);
    a.pubsub.publish(progress('user:u', 2)); // a user's task on a steps: nobody is sent it
    broker.resume(a.transport);
    await waitFor(() => shared.lost.length === 1, 'b told its feeds from a broke', 5000);
    assert.deepEqual(shared.lost, ['user:u'], 'the user topic missed a step of a: its client rejoins');
    assert.equal(shared.got.length, 1);
  });

  test('bus outage: remote feeds are lost (rejoin), local ones stay; back up, interest is resynchronised', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a3');
    const b = await node(broker, 'b3', { expect: ['a3'], local: (t) => t === 'task:mine' });
    const remote = recorder();
    const mine = recorder();
    await b.pubsub.subscribe('task:theirs', remote.sub);
    await b.pubsub.subscribe('task:mine', mine.sub);
    broker.disconnect(b.transport);
    await waitFor(() => b.availability.includes(false), 'b told the bus is down');
    assert.deepEqual(remote.lost, ['task:theirs'], 'a feed from other nodes is lost: its client rejoins');
    assert.deepEqual(mine.lost, [], 'a task running on b keeps its subscribers');
    assert.equal(b.pubsub.available, false);
    b.pubsub.publish(progress('task:mine', 1));
    assert.equal(mine.got.length, 1, 'local delivery goes on during the outage');
    broker.reconnect(b.transport);
    await waitFor(() => b.pubsub.available, 'b back');
    const again = recorder();
    await b.pubsub.subscribe('task:theirs', again.sub);
    await waitFor(() => a.pubsub.wants('task:theirs'), 'a knows again');
    a.pubsub.publish(progress('task:theirs', 5));
    await waitFor(() => again.got.length === 1, 'cross-node delivery resumed');
  });

  test('a node that reconnects or restarts breaks the feeds it fed: their subscribers rejoin', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a4');
    const b = await node(broker, 'b4', { expect: ['a4'] });
    const fed = recorder();
    await b.pubsub.subscribe('task:x', fed.sub);
    a.pubsub.publish(progress('task:x', 1));
    await waitFor(() => fed.got.length === 1, 'fed by a');
    broker.disconnect(a.transport);
    broker.reconnect(a.transport); // a may have lost frames meanwhile: it says hello again
    await waitFor(() => fed.lost.length === 1, 'b drops the feed from a');
  });

  test('a topic fed by several nodes breaks when any of them reconnects, not only the one that fed it last', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a8');
    const b = await node(broker, 'b8', { expect: ['a8'] });
    const c = await node(broker, 'c8', { expect: ['a8', 'b8'] });
    const shared = recorder();
    const other = recorder();
    await b.pubsub.subscribe('user:u', shared.sub);
    await b.pubsub.subscribe('task:on-c', other.sub);
    a.pubsub.publish(progress('user:u', 1));
    await waitFor(() => shared.got.length === 1, 'fed by a');
    c.pubsub.publish(progress('user:u', 2)); // c fed it last
    c.pubsub.publish(progress('task:on-c', 1));
    await waitFor(() => shared.got.length === 2 && other.got.length === 1, 'fed by c');
    broker.disconnect(a.transport);
    broker.reconnect(a.transport); // what a sent meanwhile is gone
    await waitFor(() => shared.lost.length === 1, 'b drops the user topic a fed');
    assert.deepEqual(other.lost, [], 'a feed only c fed stays');
  });

  test('forged and malformed messages are dropped and counted; the node keeps working', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a5');
    const b = await node(broker, 'b5', { expect: ['a5'] });
    const got = recorder();
    await b.pubsub.subscribe('t', got.sub);
    const before = b.cluster.stats().dropped;
    const forged = [
      'not json',
      '{"k":"ev"}',
      '{"k":"ev","n":"a5","t":5,"e":"x","c":"latest","y":"k","s":1,"p":{}}',
      '{"k":"ev","n":"a5","t":"t","e":"x","c":"bogus","y":"k","s":1,"p":{}}',
      '{"k":"nope","n":"x"}',
      '[1,2,3]',
      'null',
      JSON.stringify({ k: 'sub', n: 'evil', topics: 'not-a-list' }),
    ];
    b.transport.publish('node.b5', forged);
    await waitFor(() => b.cluster.stats().dropped - before === forged.length, 'every forgery counted', 2000);
    a.pubsub.publish(progress('t', 1));
    await waitFor(() => got.got.length === 1, 'still delivering');
  });

  test('request and reply between nodes; an unknown request is an error; no reply times out', async () => {
    const broker = new MemoryBroker();
    const a = await node(broker, 'a6');
    const b = await node(broker, 'b6', { expect: ['a6'] });
    b.cluster.handle('double', (n) => (n as number) * 2);
    b.cluster.handle('slow', () => new Promise(() => {}));
    assert.equal(await a.cluster.request('b6', 'double', 21), 42);
    await assert.rejects(a.cluster.request('b6', 'nope', null), /unknown request/);
    await assert.rejects(a.cluster.request('b6', 'slow', null, 100), /no reply in 100 ms/);
  });
});
