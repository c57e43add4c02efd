// The NATS transport: the conformance suite on the machine's NATS (frames capped at 256 KiB so the
// 1 MB message travels in parts), subjects, a server's own max_payload, and outages of a PRIVATE
// nats-server killed and started again on the same port.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NatsTransport, natsSubject } from '../../src/bus/transports/nats.ts';
import { quietPort } from '../helpers/ports.ts';
import { conformance, type EngineUnderTest, namespace, startNodes, stopNodes } from './conformance.ts';
import { type EngineProcess, startNatsServer } from './engines.ts';
import { assertStartTimesOut, jsonOfBytes, silentServer, testLogger } from './support.ts';

const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const CAP = 256 * 1024;
let raw: NatsConnection;

before(async () => {
  raw = await connect({ servers: NATS_URL, name: 'taskwire-bus-test-injector' });
});
after(async () => {
  await raw?.close();
});

const engine = (url = NATS_URL, maxFrameBytes: number | undefined = CAP): EngineUnderTest => ({
  create: (ns, log) => new NatsTransport({ url, namespace: ns, log, maxFrameBytes }),
  inject: async (ns, channel, data) => {
    raw.publish(natsSubject(ns, channel), data);
    await raw.flush();
  },
  oversized: maxFrameBytes,
  binary: true,
});

conformance('nats', () => engine());

test('subjects: one token per channel, escaped, distinct, no wildcards', () => {
  const channels = [
    'all',
    'node.host-1:4000:abc',
    'node_host-1:4000:abc',
    'a b',
    '*',
    '>',
    'x.*.>',
    'é',
    '',
    'z'.repeat(300),
  ];
  const subjects = channels.map((c) => natsSubject('ns1', c));
  for (const s of subjects) {
    assert.match(s, /^ns1\.[A-Za-z0-9_-]+(\.[A-Za-z0-9]+)?$/, s);
  }
  assert.equal(natsSubject('ns1', 'node.host-1:4000:abc'), 'ns1.node_2ehost-1_3a4000_3aabc');
  assert.equal(new Set(subjects).size, subjects.length);
});

test("the server's max_payload bounds every frame; larger messages arrive in parts", async () => {
  const server = await startNatsServer('max_payload: 4096\n');
  const spy = await connect({ servers: server.url });
  const nodes = await startNodes(engine(server.url, undefined), 2);
  try {
    const [a, b] = nodes;
    const sizes: number[] = [];
    const sub = spy.subscribe('>', {
      callback: (_e, m) => {
        sizes.push(m.data.length);
      },
    });
    await spy.flush();
    const sent = [
      jsonOfBytes(100, 1),
      jsonOfBytes(4096, 2),
      jsonOfBytes(20_000, 3),
      jsonOfBytes(1_000_000, 4),
      '"end"',
    ];
    for (let i = 0; i < 200; i++) sent.push(jsonOfBytes(60 + i, i));
    a.transport.publish(b.direct, sent);
    await b.rec.until(() => b.rec.on(b.direct).length === sent.length, 'every message', 30_000);
    assert.ok(
      b.rec.on(b.direct).every((m, i) => m === sent[i]),
      'intact and in order',
    );
    assert.ok(sizes.length > 0 && Math.max(...sizes) <= 4096, `largest frame ${Math.max(...sizes)} bytes`);
    sub.unsubscribe();
  } finally {
    await stopNodes(nodes);
    await spy.close();
    await server.dispose();
  }
});

test('start() rejects with a clear message when no NATS server answers', async () => {
  const port = await quietPort();
  const t = new NatsTransport({
    url: `nats://127.0.0.1:${port}`,
    namespace: namespace(),
    log: testLogger().log,
    connectTimeoutMs: 2000,
  });
  await assert.rejects(
    t.start(['all'], { deliver() {}, up() {}, down() {} }),
    /bus \(nats\): cannot connect to nats:\/\/127\.0\.0\.1:\d+/,
  );
  assert.equal(t.connected, false);
  await t.stop();
});

let server: EngineProcess | undefined;
after(() => server?.dispose());

test('the NATS server killed and started again: down, up, subscriptions restored, messages flow', async () => {
  server = await startNatsServer();
  const { log, sink } = testLogger();
  const nodes = await startNodes(engine(server.url), 2, namespace(), log);
  try {
    const [a, b] = nodes;
    a.transport.publish('all', ['"before"']);
    await b.rec.until(() => b.rec.on('all').length === 1, 'a message before the outage');
    await server.kill();
    for (const n of nodes) await n.rec.until(() => n.rec.downs.length === 1, 'down');
    assert.equal(a.transport.connected, false);
    a.transport.publish('all', ['"while down"']);
    assert.equal(a.transport.stats().unsent, 1, 'published while down: dropped and counted');
    await server.restart();
    for (const n of nodes) await n.rec.until(() => n.rec.ups === 1, 'up', 30_000);
    a.transport.publish('all', ['"after"']);
    b.transport.publish(a.direct, ['"direct after"']);
    await b.rec.until(() => b.rec.on('all').length === 2, 'broadcast after the restart');
    await a.rec.until(() => a.rec.on(a.direct).length === 1, 'direct after the restart');
    assert.deepEqual(b.rec.on('all'), ['"before"', '"after"']);
    for (const n of nodes) assert.equal(n.transport.stats().reconnects, 1);
    assert.ok(sink.lines.some((l) => l.level === 40 && l.msg === 'bus connection lost'));
    assert.ok(sink.lines.some((l) => l.level === 30 && l.msg === 'bus connection restored'));
  } finally {
    await stopNodes(nodes);
  }
});

test('start() gives up after its connect timeout when the server never answers', async () => {
  const silent = await silentServer();
  try {
    const t = new NatsTransport({
      url: `nats://127.0.0.1:${silent.port}`,
      namespace: namespace(),
      log: testLogger().log,
      connectTimeoutMs: 1500,
    });
    await assertStartTimesOut(t, 1500, /bus \(nats\): cannot connect to .* within 1500 ms/);
  } finally {
    await silent.close();
  }
});
