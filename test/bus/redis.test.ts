// The Redis transport: the conformance suite on the machine's Redis, and outages of a PRIVATE
// redis-server on a unix socket, killed and started again at the same path.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisTransport, redisChannel } from '../../src/bus/transports/redis.ts';
import { quietPort } from '../helpers/ports.ts';
import { conformance, type EngineUnderTest, namespace, startNodes, stopNodes } from './conformance.ts';
import { type EngineProcess, startRedisServer } from './engines.ts';
import { assertStartTimesOut, silentServer, testLogger } from './support.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const CAP = 256 * 1024;
let raw: Redis;

before(async () => {
  raw = new Redis(REDIS_URL, { lazyConnect: true, connectionName: 'taskwire-bus-test-injector' });
  await raw.connect();
});
after(async () => {
  await raw?.quit();
});

const engine = (url = REDIS_URL): EngineUnderTest => ({
  create: (ns, log) => new RedisTransport({ url, namespace: ns, log, maxFrameBytes: CAP }),
  inject: async (ns, channel, data) => {
    await raw.publish(redisChannel(ns, channel), data);
  },
  oversized: CAP,
  binary: true,
});

conformance('redis', () => engine());

test('start() rejects with a clear message when Redis cannot be reached, and leaves nothing running', async () => {
  const port = await quietPort();
  const t = new RedisTransport({
    url: `redis://:s3cret@127.0.0.1:${port}`,
    namespace: namespace(),
    log: testLogger().log,
    connectTimeoutMs: 2000,
  });
  await assert.rejects(t.start(['all'], { deliver() {}, up() {}, down() {} }), (err: Error) => {
    assert.match(err.message, /bus \(redis\): cannot connect to redis:\/\/127\.0\.0\.1:\d+/);
    assert.doesNotMatch(err.message, /s3cret/);
    return true;
  });
  assert.equal(t.connected, false);
  await t.stop();
});

let server: EngineProcess | undefined;
after(() => server?.dispose());

test('the Redis server killed and started again: down, up, channels subscribed again, messages flow', async () => {
  server = await startRedisServer();
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
    assert.equal(a.rec.downs.length, 1, 'one down per outage, though both connections were lost');
    assert.ok(sink.lines.some((l) => l.level === 40 && l.msg === 'bus connection lost'));
    assert.ok(sink.lines.some((l) => l.level === 30 && l.msg === 'bus connection restored'));
  } finally {
    await stopNodes(nodes);
  }
});

test('start() gives up after its connect timeout when the server never answers', async () => {
  const silent = await silentServer();
  try {
    const t = new RedisTransport({
      url: `redis://127.0.0.1:${silent.port}`,
      namespace: namespace(),
      log: testLogger().log,
      connectTimeoutMs: 1500,
    });
    await assertStartTimesOut(t, 1500, /bus \(redis\): cannot connect to .* within 1500 ms/);
  } finally {
    await silent.close();
  }
});
