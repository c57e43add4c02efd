// A newcomer's first screen: with the default settings, a start and a clean stop log nothing at
// warn level or above (a warning there would be advice that does not apply, or a real fault).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { startServer } from '../../src/server/index.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { logSink } from '../helpers/log-sink.ts';
import { TEST_SECRET } from '../helpers/server.ts';

test('the default start and stop log no warnings', async () => {
  const sink = logSink();
  const db = await createTestDatabase();
  try {
    const server = await startServer({
      env: {},
      config: { port: 0, host: '127.0.0.1', databaseUrl: db.url, secret: TEST_SECRET },
      log: createLogger({ logLevel: 'info', logPretty: false }, sink.stream),
    });
    const defaults = loadConfig({});
    assert.equal(server.config.concurrency, defaults.concurrency, 'the default concurrency');
    assert.equal(server.config.dbPoolSize, defaults.dbPoolSize, 'the default pool size');
    assert.ok(defaults.dbPoolSize < defaults.concurrency, 'the case graphile-worker warns about');
    await server.stop();
  } finally {
    await db.drop();
  }
  const { lines } = sink;
  assert.ok(
    lines.some((l) => l.msg === 'taskwire listening'),
    'the logger was used',
  );
  const warnings = lines.filter((l) => l.level >= 40);
  assert.deepEqual(
    warnings.map((l) => l.msg),
    [],
    JSON.stringify(warnings),
  );
});
