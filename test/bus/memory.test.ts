// The in-process transport: the conformance suite, plus the broker's outage switch the cluster
// layer's tests rely on, asynchronous delivery, and a private broker for a lone node.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBroker, MemoryTransport } from '../../src/bus/transports/memory.ts';
import { conformance, namespace, startNodes, stopNodes } from './conformance.ts';
import { recorder, testLogger } from './support.ts';

const broker = new MemoryBroker();

conformance('memory', () => ({
  create: (ns, log) => new MemoryTransport({ broker, namespace: ns, log, maxFrameBytes: 16 * 1024 }),
  inject: async (ns, channel, data) => broker.inject(ns, channel, data),
  oversized: 16 * 1024,
  binary: true,
}));

test('delivery is asynchronous: nothing is delivered inside publish()', async () => {
  const t = new MemoryTransport({ log: testLogger().log });
  const rec = recorder();
  await t.start(['all'], rec.handlers);
  try {
    t.publish('all', ['1']);
    assert.equal(rec.calls, 0);
    await rec.until(() => rec.on('all').length === 1, 'the message');
  } finally {
    await t.stop();
  }
});

test('lone transports get private brokers and do not hear each other', async () => {
  const { log } = testLogger();
  const a = new MemoryTransport({ log });
  const b = new MemoryTransport({ log });
  const ra = recorder();
  const rb = recorder();
  await a.start(['all'], ra.handlers);
  await b.start(['all'], rb.handlers);
  try {
    assert.notEqual(a.broker, b.broker);
    a.publish('all', ['"a"']);
    b.publish('all', ['"b"']);
    await ra.until(() => ra.on('all').length === 1, 'own message');
    await rb.until(() => rb.on('all').length === 1, 'own message');
    assert.deepEqual(ra.on('all'), ['"a"']);
    assert.deepEqual(rb.on('all'), ['"b"']);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('broker.disconnect() tells the node down, cuts it off both ways, and reconnect() brings it up', async () => {
  const { log, sink } = testLogger();
  const engine = { broker: new MemoryBroker() };
  const nodes = await startNodes(
    {
      create: (ns, l) => new MemoryTransport({ broker: engine.broker, namespace: ns, log: l }),
      inject: async () => {},
      binary: true,
    },
    2,
    namespace(),
    log,
  );
  try {
    const [a, b] = nodes;
    const bt = b.transport as MemoryTransport;
    a.transport.publish('all', ['"before"']);
    await b.rec.until(() => b.rec.on('all').length === 1, 'a message before the outage');
    engine.broker.disconnect(bt);
    await b.rec.until(() => b.rec.downs.length === 1, 'down');
    assert.equal(bt.connected, false);
    a.transport.publish('all', ['"while b is away"']);
    b.transport.publish('all', ['"from b while away"']);
    await a.rec.until(() => a.rec.on('all').length === 2, 'a hears itself');
    assert.equal(b.transport.stats().unsent, 1);

    engine.broker.reconnect(bt);
    await b.rec.until(() => b.rec.ups === 1, 'up');
    assert.equal(bt.connected, true);
    a.transport.publish('all', ['"after"']);
    b.transport.publish('all', ['"b after"']);
    await b.rec.until(() => b.rec.on('all').length === 3, 'b hears again');
    await a.rec.until(() => a.rec.on('all').length === 4, 'a hears b again');
    assert.deepEqual(b.rec.on('all'), ['"before"', '"after"', '"b after"']);
    assert.deepEqual(a.rec.on('all'), ['"before"', '"while b is away"', '"after"', '"b after"']);
    const s = b.transport.stats();
    assert.equal(s.reconnects, 1);
    assert.equal(s.gaps, 1, "the frame b missed shows as a gap in a's counter");
    assert.equal(a.rec.downs.length, 0);
    const lost = sink.lines.find((l) => l.msg === 'bus connection lost');
    const back = sink.lines.find((l) => l.msg === 'bus connection restored');
    assert.equal(lost?.level, 40);
    assert.equal(back?.level, 30);
  } finally {
    await stopNodes(nodes);
  }
});

test('a deliver handler that throws is logged and the transport carries on', async () => {
  const { log, sink } = testLogger();
  const t = new MemoryTransport({ log });
  const rec = recorder();
  let first = true;
  await t.start(['all'], {
    ...rec.handlers,
    deliver(channel, messages) {
      if (first) {
        first = false;
        throw new Error('handler bug');
      }
      rec.handlers.deliver(channel, messages);
    },
  });
  try {
    t.publish('all', ['1']);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    t.publish('all', ['2']);
    await rec.until(() => rec.on('all').length === 1, 'the second message');
    assert.deepEqual(rec.on('all'), ['2']);
    assert.ok(sink.lines.some((l) => l.level === 50 && l.msg === 'bus deliver handler threw'));
  } finally {
    await t.stop();
  }
});
