// `taskwire start` on Linux replaces itself (same pid) with glibc's malloc held to two arenas,
// keeps a MALLOC_ARENA_MAX the environment already sets, and leaves a process with an IPC channel
// (a cluster worker, a parent that talks to it) as it is, since the channel would not survive.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { type ServerProcess, spawnServer } from '../helpers/process.ts';

const skip = process.platform === 'linux' ? false : 'glibc arenas: Linux only';

let db: TestDatabase;
const started: ServerProcess[] = [];
before(async () => {
  if (!skip) db = await createTestDatabase();
});
after(async () => {
  for (const p of started) p.kill('SIGTERM');
  await Promise.all(started.map((p) => p.exited));
  await db?.drop();
});

/** The environment a running process has now (after any execve), from /proc. */
function environOf(pid: number): Record<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]);
  return Object.fromEntries(entries);
}

test('taskwire start runs with MALLOC_ARENA_MAX=2, in the same process', { skip }, async () => {
  const server = await spawnServer({ databaseUrl: db.url, nodeId: 'arenas-default' });
  started.push(server);
  assert.ok(server.child.pid);
  assert.equal(environOf(server.child.pid).MALLOC_ARENA_MAX, '2');
  // The pid the parent knows is the server's: it answers and its signals stop it.
  assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
});

test('a MALLOC_ARENA_MAX set by the environment is kept', { skip }, async () => {
  const server = await spawnServer({
    databaseUrl: db.url,
    nodeId: 'arenas-set',
    env: { MALLOC_ARENA_MAX: '0' },
  });
  started.push(server);
  assert.ok(server.child.pid);
  assert.equal(environOf(server.child.pid).MALLOC_ARENA_MAX, '0');
});

test('a process with an IPC channel is not replaced: the channel still works', { skip }, async () => {
  const server = await spawnServer({ databaseUrl: db.url, nodeId: 'arenas-ipc', ipc: true });
  started.push(server);
  assert.ok(server.child.pid);
  assert.equal(environOf(server.child.pid).MALLOC_ARENA_MAX, undefined);
  assert.ok(server.child.connected, 'the IPC channel is still open');
});
