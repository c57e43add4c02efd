// The embedded default: with DATABASE_URL unset the server runs its own PostgreSQL in the data
// directory and keeps the data between runs; the dev secret is generated once and kept too.
// PostgreSQL cannot bind port 0, and the restart needs its port again: a quiet port (ports.ts).
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startServer } from '../../src/server/index.ts';
import { quietPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

let dataDir: string;
before(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'taskwire-embedded-'));
});
after(() => rm(dataDir, { recursive: true, force: true }));

async function start(pgPort: number) {
  return startServer({
    env: {},
    config: {
      port: 0,
      host: '127.0.0.1',
      dataDir,
      embeddedPgPort: pgPort,
      logLevel: 'silent',
      pollIntervalMs: 100,
    },
  });
}

test('start without DATABASE_URL, create a task, stop, start again: the task is still there', async () => {
  const pgPort = await quietPort();
  const first = await start(pgPort);
  let token: string;
  let id: string;
  try {
    assert.equal(first.secretGenerated, true, 'a secret was generated on the first start');
    const secretFile = await stat(path.join(dataDir, 'secret'));
    assert.equal(secretFile.mode & 0o077, 0, 'the secret file is private');
    token = await first.tokens.mint('alice', 600);
    const res = await fetch(`${first.url}/api/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ steps: 2, interval_ms: 10 }),
    });
    assert.equal(res.status, 201);
    id = (await res.json()).task_id;
    await waitFor(async () => {
      const res = await fetch(`${first.url}/api/tasks/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return (await res.json()).status === 'completed';
    }, 'the task to complete before the stop');
  } finally {
    await first.stop();
  }

  const second = await start(pgPort);
  try {
    assert.equal(second.secretGenerated, false, 'the same secret is used again');
    const res = await fetch(`${second.url}/api/tasks/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200, 'the old token still works and the task is still there');
    const task = await res.json();
    assert.equal(task.status, 'completed');
    assert.deepEqual(task.result, { steps: 2 });
  } finally {
    await second.stop();
  }
});
