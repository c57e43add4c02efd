// The transports' factory and the default namespace derived from a database's identity.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createTransport,
  defaultNamespace,
  MemoryBroker,
  MemoryTransport,
  NatsTransport,
  PostgresTransport,
  RedisTransport,
} from '../../src/bus/transports/index.ts';
import { recorder, testLogger } from './support.ts';

const { log } = testLogger();

test('createTransport() builds the adapter of each kind and refuses a missing URL', async () => {
  const ns = 'tw0123456789';
  assert.ok((await createTransport({ kind: 'memory', namespace: ns, log })) instanceof MemoryTransport);
  assert.ok(
    (await createTransport({
      kind: 'postgres',
      namespace: ns,
      log,
      databaseUrl: 'postgres://h/db',
    })) instanceof PostgresTransport,
  );
  assert.ok(
    (await createTransport({ kind: 'nats', namespace: ns, log, natsUrl: 'nats://127.0.0.1:4222' })) instanceof
      NatsTransport,
  );
  assert.ok(
    (await createTransport({
      kind: 'redis',
      namespace: ns,
      log,
      redisUrl: 'redis://127.0.0.1:6379',
    })) instanceof RedisTransport,
  );
  for (const kind of ['postgres', 'nats', 'redis'] as const)
    await assert.rejects(
      createTransport({ kind, namespace: ns, log }),
      new RegExp(`the ${kind} transport needs`),
    );
  await assert.rejects(
    createTransport({ kind: 'kafka' as never, namespace: ns, log }),
    /unknown transport kind/,
  );
  await assert.rejects(createTransport({ kind: 'memory', namespace: 'a.b', log }), /namespace must be/);

  const broker = new MemoryBroker();
  const a = await createTransport({ kind: 'memory', namespace: ns, log, broker });
  const b = await createTransport({ kind: 'memory', namespace: ns, log, broker });
  const rb = recorder();
  await a.start([], recorder().handlers);
  await b.start(['all'], rb.handlers);
  a.publish('all', ['"shared broker"']);
  await rb.until(() => rb.on('all').length === 1, 'a message over the shared broker');
  await Promise.all([a.stop(), b.stop()]);
});

test('defaultNamespace() depends on host, port and database only', () => {
  const base = defaultNamespace('postgres://app:pw1@db.internal:5432/taskwire');
  assert.match(base, /^tw[0-9a-f]{10}$/);
  assert.equal(
    defaultNamespace('postgres://other:pw2@db.internal:5432/taskwire'),
    base,
    'user and password do not count',
  );
  assert.equal(
    defaultNamespace('postgres://app@DB.internal/taskwire?sslmode=require'),
    base,
    'default port, case, options',
  );
  assert.notEqual(defaultNamespace('postgres://app:pw1@db.internal:5433/taskwire'), base);
  assert.notEqual(defaultNamespace('postgres://app:pw1@db.internal:5432/taskwire_test_1'), base);
  assert.notEqual(defaultNamespace('postgres://app:pw1@db2.internal:5432/taskwire'), base);
  assert.equal(
    defaultNamespace('postgres://postgres@127.0.0.1:5432/x'),
    defaultNamespace('postgresql://postgres@localhost/x'),
    'loopback spellings are one host',
  );
  assert.equal(defaultNamespace('postgres://[::1]:5432/x'), defaultNamespace('postgres://localhost/x'));
  assert.doesNotMatch(defaultNamespace('postgres://u:hunter2@h/db'), /hunter2/);
});
