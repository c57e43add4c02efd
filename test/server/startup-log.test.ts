// A newcomer's first screen: with the default settings, a start and a clean stop log nothing at
// warn level or above (a warning there would be advice that does not apply, or a real fault),
// and no log line names a key twice (one binding per key: pino would print both).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { startServer } from '../../src/server/index.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { logSink } from '../helpers/log-sink.ts';
import { TEST_SECRET } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

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

/** The keys that appear more than once in one object of a JSON text, as `path.key`. */
function duplicateKeys(json: string): string[] {
  const dups: string[] = [];
  const stack: Array<{ keys: Set<string> | null; path: string; key: string }> = [];
  let i = 0;
  const readString = (): string => {
    const start = i;
    i += 1; // opening quote
    while (json[i] !== '"') i += json[i] === '\\' ? 2 : 1;
    i += 1;
    return JSON.parse(json.slice(start, i));
  };
  while (i < json.length) {
    const c = json[i];
    if (c === '{' || c === '[') {
      const top = stack.at(-1);
      const path = top ? (top.path ? `${top.path}.${top.key}` : top.key) : '';
      stack.push({ keys: c === '{' ? new Set() : null, path, key: '' });
      i += 1;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i += 1;
    } else if (c === '"') {
      const s = readString();
      let j = i;
      while (json[j] === ' ') j += 1;
      const top = stack.at(-1);
      if (json[j] === ':' && top?.keys) {
        if (top.keys.has(s)) dups.push(top.path ? `${top.path}.${s}` : s);
        top.keys.add(s);
        top.key = s;
      }
    } else {
      i += 1;
    }
  }
  return dups;
}

test('the duplicate-key check finds a repeated key, nested too', () => {
  assert.deepEqual(duplicateKeys('{"a":1,"b":{"c":"}\\"","c":2},"a":3}'), ['b.c', 'a']);
  assert.deepEqual(duplicateKeys('{"a":[{"x":1},{"x":2}],"b":"a"}'), []);
});

test('no log line of a start, a task, a request and a stop repeats a key', async () => {
  const sink = logSink();
  const db = await createTestDatabase();
  try {
    const server = await startServer({
      env: {},
      config: {
        port: 0,
        host: '127.0.0.1',
        databaseUrl: db.url,
        secret: TEST_SECRET,
        pollIntervalMs: 100,
        snapshotIntervalMs: 100,
      },
      log: createLogger({ logLevel: 'debug', logPretty: false }, sink.stream),
    });
    try {
      const token = await server.tokens.mint('alice', 600);
      const res = await fetch(`${server.url}/api/tasks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ steps: 2, interval_ms: 0 }),
      });
      assert.equal(res.status, 201);
      const { task_id } = (await res.json()) as { task_id: string };
      await waitFor(
        () => sink.lines.some((l) => l.msg === 'attempt ended' && l.task_id === task_id),
        'the attempt to end',
      );
      assert.equal((await fetch(`${server.url}/nope`)).status, 404);
    } finally {
      await server.stop();
    }
  } finally {
    await db.drop();
  }
  const lines = sink.text().split('\n').filter(Boolean);
  assert.ok(
    lines.some((l) => l.includes('"taskwire listening"')),
    'the startup line was logged',
  );
  assert.ok(lines.length >= 5, `several kinds of lines were logged (${lines.length})`);
  const repeated = lines.flatMap((line) => duplicateKeys(line).map((key) => `${key} in ${line}`));
  assert.deepEqual(repeated, []);
});
