// bin/taskwire.js on a Node older than 22.18 runs the server as a child on the Node 24 npm
// installed. A SIGTERM sent to the wrapper (a supervisor, `kill <pid>`) reaches the server, which
// drains and stops; both exit, the wrapper with the server's status, and no process or port is
// left. A Ctrl-C that reaches both at once (the whole process group) is still one graceful stop.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { olderNode, type ServerProcess, spawnServer } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const node = olderNode();
const skip = node ? false : 'no Node older than 22.18 on this machine: the wrapper never runs itself again';

let db: TestDatabase;
const started: ServerProcess[] = [];
before(async () => {
  if (!skip) db = await createTestDatabase();
});
after(async () => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
  await Promise.all(started.map((p) => p.exited));
  await db?.drop();
});

/** The pid of the server under the wrapper: pino's `pid` in its startup line. */
function serverPid(p: ServerProcess): number {
  const line = p
    .output()
    .split('\n')
    .find((l) => l.includes('"msg":"taskwire listening"'));
  assert.ok(line, `no startup line in:\n${p.output()}`);
  return JSON.parse(line).pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

async function start(nodeId: string, detached = false): Promise<ServerProcess> {
  const p = await spawnServer({
    databaseUrl: db.url,
    nodeId,
    node,
    env: { LOG_LEVEL: 'info' },
    ...(detached ? { detached } : {}),
  });
  started.push(p);
  return p;
}

describe('the Node 24 wrapper', { skip }, () => {
  test('kill -TERM <wrapper pid>: the server drains and stops, both exit 0, nothing is left', async () => {
    const p = await start('wrapper-term');
    const server = serverPid(p);
    assert.notEqual(server, p.child.pid, 'the server runs as the wrapper’s child');
    process.kill(p.child.pid!, 'SIGTERM');
    assert.equal(await p.exited, 0, `the wrapper exits with the server’s status:\n${p.output()}`);
    assert.match(p.output(), /"msg":"stopped"/, 'the server drained and logged its stop');
    await waitFor(() => !alive(server), 'the server process to be gone', 10_000);
    assert.equal(await refused(p.port), true, 'the port is free');
  });

  test('SIGINT to the whole process group (a Ctrl-C) is one graceful stop, not a forced one', async () => {
    const p = await start('wrapper-int', true);
    const server = serverPid(p);
    process.kill(-p.child.pid!, 'SIGINT'); // the wrapper leads its group: both get it, and it forwards
    assert.equal(await p.exited, 0, p.output());
    assert.match(p.output(), /"msg":"stopped"/);
    assert.doesNotMatch(p.output(), /stopping at once/);
    await waitFor(() => !alive(server), 'the server process to be gone', 10_000);
    assert.equal(await refused(p.port), true, 'the port is free');
  });
});
