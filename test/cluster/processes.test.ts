// All cores of one machine: `taskwire start --processes 2` runs two server processes on one port,
// joined over the bus, and clients can't tell: phoenix.js over WebSocket and over LongPoll (whose
// requests land on either process: a request for another process's session is answered by that
// process, over the bus) follow a task to its end. A LongPoll session made on one node is served
// through another. SIGTERM to the primary drains every process and frees the port.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { LongPoll, Socket } from 'phoenix';
import { startNodes } from '../helpers/cluster.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { post, type ServerProcess, testToken } from '../helpers/process.ts';
import { TEST_SECRET } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';

const BIN = path.join(import.meta.dirname, '../../bin/taskwire.js');

interface Group {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<number | string>;
}

/** `taskwire start --processes n` on port 0; resolves once its banner names the URL. */
async function startGroup(databaseUrl: string, n: number): Promise<Group> {
  let out = '';
  const child = spawn(process.execPath, [BIN, 'start', '--processes', String(n)], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      DATABASE_URL: databaseUrl,
      TASKWIRE_SECRET: TEST_SECRET,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      TASKWIRE_POLL_INTERVAL_MS: '200',
      TASKWIRE_BUS_HEARTBEAT_MS: '500',
      TASKWIRE_SHUTDOWN_TIMEOUT_MS: '1000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, sig) => resolve(code ?? sig ?? -1)),
  );
  const url = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`the group exited at start:\n${out}`);
      return /taskwire is listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    },
    'the group to listen',
    60_000,
    50,
  );
  return { child, url, output: () => out, exited };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer().once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Follows a task with phoenix.js until it ends; the events' names in order. */
async function followToEnd(socket: Socket, id: string): Promise<string[]> {
  const seen: string[] = [];
  const channel = socket.channel(`task:${id}`, {});
  for (const e of ['started', 'progress', 'completed', 'failed'])
    channel.on(e, () => {
      seen.push(e);
    });
  channel.join();
  await waitFor(() => seen.includes('completed') || seen.includes('failed'), `task ${id} to end`, 30_000);
  return seen;
}

describe('--processes', { concurrency: false }, () => {
  let db: TestDatabase;
  let group: Group;
  let alice: string;
  before(async () => {
    db = await createTestDatabase();
    group = await startGroup(db.url, 2);
    alice = await testToken('alice');
  });
  after(async () => {
    if (group?.child.exitCode === null) group.child.kill('SIGKILL');
    await group?.exited;
    await db.drop();
  });

  test('two processes on one port, both alive in the liveness table, serving WebSocket and LongPoll clients', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const nodes = await waitFor(async () => {
        const { rows } = await pool.query<{ id: string }>('select id from taskwire.nodes order by id');
        return rows.length === 2 ? rows.map((r) => r.id) : undefined;
      }, 'two nodes heartbeating');
      assert.match(nodes[0], /\/1$/);
      assert.match(nodes[1], /\/2$/);
    } finally {
      await pool.end();
    }
    const ws = new Socket(`${group.url.replace(/^http/, 'ws')}/socket`, { params: { token: alice } });
    const lp = new Socket(`${group.url}/socket`, { params: { token: alice }, transport: LongPoll });
    ws.connect();
    lp.connect();
    try {
      for (let i = 0; i < 4; i++) {
        const created = await post(group.url, alice, '/api/tasks', { steps: 6, interval_ms: 40 });
        const [a, b] = await Promise.all([
          followToEnd(ws, created.body.task_id),
          followToEnd(lp, created.body.task_id),
        ]);
        for (const seen of [a, b]) assert.equal(seen.at(-1), 'completed', JSON.stringify(seen));
      }
    } finally {
      ws.disconnect();
      lp.disconnect();
    }
  });

  test('SIGTERM to the primary drains every process, exits 0 and frees the port', async () => {
    const port = Number(new URL(group.url).port);
    group.child.kill('SIGTERM');
    assert.equal(await group.exited, 0, group.output());
    assert.ok(await portFree(port), 'the port is free');
  });
});

describe('LongPoll across nodes', () => {
  let db: TestDatabase;
  let nodes: ServerProcess[] = [];
  before(async () => {
    db = await createTestDatabase();
    nodes = await startNodes(db.url, 'postgres', [
      { id: 'lp-a', worker: true },
      { id: 'lp-b', worker: false },
    ]);
  });
  after(async () => {
    for (const p of nodes) p.kill('SIGKILL');
    await Promise.all(nodes.map((p) => p.exited));
    await db.drop();
  });

  test('a session made on A is used through B: joins, pushes and polls are answered by A', async () => {
    const [a, b] = nodes;
    const token = await testToken('alice');
    const opened = await (await fetch(`${a.url}/socket/longpoll?token=${token}&vsn=2.0.0`)).json();
    assert.equal(opened.status, 410);
    const session = opened.token as string;
    const created = await post(a.url, token, '/api/tasks', { steps: 5, interval_ms: 50 });
    const topic = `task:${created.body.task_id}`;
    const sent = await fetch(`${b.url}/socket/longpoll?token=${encodeURIComponent(session)}&vsn=2.0.0`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(['1', '1', topic, 'phx_join', {}]),
    });
    assert.equal((await sent.json()).status, 200, 'B took the push for A’s session');
    const frames: unknown[][] = [];
    await waitFor(
      async () => {
        const res = await (
          await fetch(`${b.url}/socket/longpoll?token=${encodeURIComponent(session)}&vsn=2.0.0`)
        ).json();
        assert.ok([200, 204].includes(res.status), JSON.stringify(res));
        for (const m of res.messages) frames.push(JSON.parse(m));
        return frames.some((f) => f[3] === 'completed');
      },
      'the task to complete, polled through B',
      20_000,
      0,
    );
    assert.equal((frames[0] as any)[4].status, 'ok', 'the join reply first');
    const gone = await (
      await fetch(`${b.url}/socket/longpoll?token=lp1.${Buffer.from('nobody').toString('base64url')}.x.y`)
    ).json();
    assert.equal(gone.status, 410, 'a session of an unknown node is gone');
  });
});
