// The PostgreSQL transport against the machine's PostgreSQL (a fresh database per file): the
// conformance suite, payload sizes in bytes, references and their pruning, channel names, and a
// LISTEN connection cut by pg_terminate_backend.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { PG_MAX_FRAME_BYTES, PostgresTransport, pgChannelName } from '../../src/bus/transports/postgres.ts';
import { createPool, migrate } from '../../src/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { quietPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { conformance, type EngineUnderTest, namespace, startNodes, stopNodes } from './conformance.ts';
import { assertStartTimesOut, jsonOfBytes, nodeChannel, silentServer, testLogger } from './support.ts';

let db: TestDatabase;
let admin: pg.Client;

before(async () => {
  db = await createTestDatabase();
  const pool = createPool({ connectionString: db.url, max: 3, timeoutMs: 10_000 });
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
});
after(async () => {
  await admin?.end();
  await db?.drop();
});

const engine = (opts: { spillTtlMs?: number } = {}): EngineUnderTest => ({
  create: (ns, log) => new PostgresTransport({ databaseUrl: db.url, namespace: ns, log, ...opts }),
  inject: async (ns, channel, data) => {
    await admin.query('select pg_notify($1, $2)', [pgChannelName(ns, channel), String(data)]);
  },
  oversized: PG_MAX_FRAME_BYTES,
  binary: false,
});

conformance('postgres', () => engine());

test('NOTIFY channel names stay short ASCII identifiers, one per logical channel', () => {
  const long = nodeChannel(`${'very-long-host-name.example.com'.repeat(4)}:4000:${'z'.repeat(40)}`);
  const names = [long, `${long}x`, 'all', 'All', 'node.a', 'node_a', 'nodé.ü'].map((c) =>
    pgChannelName('t0123456789abcdef0123456789abcde', c),
  );
  for (const n of names) {
    assert.ok(Buffer.byteLength(n) <= 63, `${n} fits an identifier`);
    assert.match(n, /^[A-Za-z0-9_-]+$/);
  }
  assert.equal(new Set(names).size, names.length, 'distinct channels get distinct names');
});

test('every NOTIFY payload stays under the byte limit, whatever the mix of message sizes', async () => {
  const ns = namespace();
  const spy = new pg.Client({ connectionString: db.url });
  await spy.connect();
  const sizes: number[] = [];
  spy.on('notification', (n) => sizes.push(Buffer.byteLength(n.payload ?? '')));
  await spy.query(`listen ${pg.escapeIdentifier(pgChannelName(ns, 'all'))}`);
  const nodes = await startNodes(engine(), 2, ns);
  try {
    const [a, b] = nodes;
    const sent: string[] = [];
    for (let i = 0; i < 600; i++) sent.push(jsonOfBytes(20 + ((i * 977) % 4000), i));
    sent.push(jsonOfBytes(7_599, 1), jsonOfBytes(7_600, 2), jsonOfBytes(7_601, 3), jsonOfBytes(20_000, 4));
    a.transport.publish('all', sent);
    await b.rec.until(() => b.rec.on('all').length === sent.length, 'every message', 30_000);
    assert.deepEqual(b.rec.on('all'), sent);
    await waitFor(() => sizes.length === a.transport.stats().framesOut, 'the spy to see every frame');
    assert.ok(sizes.length < sent.length / 2, `${sent.length} messages in ${sizes.length} NOTIFYs`);
    assert.ok(Math.max(...sizes) <= PG_MAX_FRAME_BYTES, `largest payload ${Math.max(...sizes)} bytes`);
    const { rows } = await admin.query('select count(*)::int as n from taskwire.bus_spill');
    assert.ok(rows[0].n >= 3, 'messages too large for a NOTIFY went by reference');
  } finally {
    await stopNodes(nodes);
    await spy.end();
  }
});

test('stored large messages are pruned once past their time to live', async () => {
  const nodes = await startNodes(engine({ spillTtlMs: 300 }), 2);
  try {
    const [a, b] = nodes;
    const big = jsonOfBytes(50_000, 7);
    a.transport.publish(b.direct, [big]);
    await b.rec.until(() => b.rec.on(b.direct).length === 1, 'the large message');
    const { rows } = await admin.query('select ref from taskwire.bus_spill order by created_at desc limit 1');
    const first = rows[0].ref as string;
    // A later reference prunes what is older than the TTL.
    await waitFor(
      async () => {
        a.transport.publish(b.direct, [big]);
        const r = await admin.query('select 1 from taskwire.bus_spill where ref = $1', [first]);
        return r.rowCount === 0;
      },
      'the first stored message to be pruned',
      10_000,
      100,
    );
    assert.equal(b.transport.stats().dropped, 0);
  } finally {
    await stopNodes(nodes);
  }
});

test('start() rejects with a clear message when the database cannot be reached', async () => {
  const port = await quietPort();
  const t = new PostgresTransport({
    databaseUrl: `postgres://postgres:s3cret@127.0.0.1:${port}/nowhere`,
    namespace: namespace(),
    log: testLogger().log,
    connectTimeoutMs: 2000,
  });
  const started = Date.now();
  await assert.rejects(t.start(['all'], { deliver() {}, up() {}, down() {} }), (err: Error) => {
    assert.match(err.message, /bus \(postgres\): cannot LISTEN on localhost:\d+\/nowhere/);
    assert.doesNotMatch(err.message, /s3cret/);
    return true;
  });
  assert.ok(Date.now() - started < 5000);
  assert.equal(t.connected, false);
  await t.stop();
});

test('a terminated LISTEN connection: down, then up after re-LISTEN, and messages flow again', async () => {
  const { log, sink } = testLogger();
  const nodes = await startNodes(engine(), 2, namespace(), log);
  try {
    const [a, b] = nodes;
    a.transport.publish('all', ['"before"']);
    await b.rec.until(() => b.rec.on('all').length === 1, 'a message before the cut');
    const { rows } = await admin.query(
      `select pg_terminate_backend(pid) as ok from pg_stat_activity
        where datname = $1 and application_name = 'taskwire-bus'`,
      [db.name],
    );
    assert.equal(rows.length, 2, "both nodes' bus connections found by application_name");
    for (const n of nodes) await n.rec.until(() => n.rec.downs.length === 1, 'down');
    for (const n of nodes) await n.rec.until(() => n.rec.ups === 1, 'up', 20_000);
    assert.equal(a.transport.connected, true);
    a.transport.publish('all', ['"after"']);
    b.transport.publish(a.direct, ['"direct after"']);
    await b.rec.until(() => b.rec.on('all').length === 2, 'broadcast after the reconnect');
    await a.rec.until(() => a.rec.on(a.direct).length === 1, 'direct after the reconnect');
    assert.deepEqual(b.rec.on('all'), ['"before"', '"after"']);
    for (const n of nodes) assert.equal(n.transport.stats().reconnects, 1);
    assert.ok(sink.lines.some((l) => l.level === 40 && l.msg === 'bus connection lost'));
    assert.ok(sink.lines.some((l) => l.level === 30 && l.msg === 'bus connection restored'));
    const again = await admin.query(
      `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'taskwire-bus'`,
      [db.name],
    );
    assert.equal(again.rows[0].n, 2, 'one connection per node, no leak');
  } finally {
    await stopNodes(nodes);
  }
  const left = await admin.query(
    `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'taskwire-bus'`,
    [db.name],
  );
  assert.equal(left.rows[0].n, 0, 'stop() closed the connections');
});

test('start() gives up after its connect timeout when the database never answers', async () => {
  const silent = await silentServer();
  try {
    const t = new PostgresTransport({
      databaseUrl: `postgres://postgres@127.0.0.1:${silent.port}/db`,
      namespace: namespace(),
      log: testLogger().log,
      connectTimeoutMs: 1500,
    });
    await assertStartTimesOut(t, 1500, /bus \(postgres\): cannot LISTEN on localhost:\d+\/db within 1500 ms/);
  } finally {
    await silent.close();
  }
});
