// Tests the embedded PostgreSQL launcher against the real binaries: persistence across restarts, a busy
// port, a stale pid file and a server orphaned by a killed run, and (as root) the postgres OS user.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { quietPort } from '../helpers/ports.ts';

const launcher = pathToFileURL(fileURLToPath(new URL('../../src/db/embedded.ts', import.meta.url))).href;
const isRoot = process.getuid?.() === 0;
const onLinux = process.platform === 'linux';

const dirs: string[] = [];
const handles: EmbeddedPostgres[] = [];
const children: ChildProcess[] = [];
const servers: net.Server[] = [];

after(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const h of handles) await h.stop().catch(() => {});
  for (const server of servers) server.close();
  // Anything still running on a test cluster (an orphan a failed test left behind) gets a fast shutdown.
  for (const dir of dirs) {
    const pid = await postmasterPid(path.join(dir, 'data', 'pg'));
    if (pid !== undefined && isRunning(pid)) {
      process.kill(pid, 'SIGINT');
      await waitFor(() => !isRunning(pid), 15_000, `test cluster PID ${pid} to stop`).catch(() => {});
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'taskwire-pg-'));
  // mkdtemp makes it 0700; as root the server runs as OS user postgres, which must be able to enter it.
  await fs.chmod(dir, 0o755);
  dirs.push(dir);
  return dir;
}

async function start(dataDir: string, port: number, logs: string[] = []): Promise<EmbeddedPostgres> {
  const db = await startEmbeddedPostgres({ dataDir, port, log: (m) => logs.push(m) });
  handles.push(db);
  return db;
}

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

async function postmasterPid(pgDir: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(pgDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : Number.parseInt(text, 10);
}

/** Alive and not a zombie (init on some machines, this one included, does not reap orphans). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (!onLinux) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Starts the launcher in a child Node process and resolves once its server is ready. */
async function startInChild(dataDir: string, port: number): Promise<ChildProcess> {
  const code = [
    `import { startEmbeddedPostgres } from ${JSON.stringify(launcher)};`,
    'const db = await startEmbeddedPostgres({ dataDir: process.env.TW_DATA_DIR, port: Number(process.env.TW_PORT) });',
    "process.stdout.write('READY\\n');",
    // Closing stdin asks for a clean stop.
    "process.stdin.on('end', async () => { await db.stop(); process.exit(0); });",
    'process.stdin.resume();',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, TW_DATA_DIR: dataDir, TW_PORT: `${port}` },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (chunk) => {
    out += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    out += chunk;
  });
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`child exited early: ${out}`);
      return out.includes('READY');
    },
    30_000,
    'the child process to start PostgreSQL',
  );
  return child;
}

test('starts, persists data across a restart, stops idempotently', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir();
  const dataDir = path.join(dir, 'data');
  const port = await quietPort();
  const sigintBefore = process.listenerCount('SIGINT');
  const sigtermBefore = process.listenerCount('SIGTERM');

  let t0 = performance.now();
  const first = await start(dataDir, port);
  const firstMs = performance.now() - t0;
  assert.match(first.url, new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${port}/taskwire$`));
  // No signal handlers of its own: the host's graceful shutdown stays in charge.
  assert.equal(process.listenerCount('SIGINT'), sigintBefore);
  assert.equal(process.listenerCount('SIGTERM'), sigtermBefore);

  await query(first.url, 'CREATE TABLE notes (id int PRIMARY KEY, body text)');
  await query(first.url, "INSERT INTO notes VALUES (1, 'héllo')");
  const settings = await query(
    first.url,
    "SELECT current_setting('listen_addresses') AS listen, current_setting('server_encoding') AS enc",
  );
  assert.deepEqual(settings.rows[0], { listen: '127.0.0.1', enc: 'UTF8' });

  const pgDir = path.join(dataDir, 'pg');
  const pid = await postmasterPid(pgDir);
  assert.ok(pid !== undefined);
  if (onLinux) {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    assert.equal(pgrp, pid, 'postgres runs in its own process group, out of reach of a terminal Ctrl-C');
  }
  if (isRoot && onLinux) {
    const pgUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${pgUid}\\s`, 'm'), 'runs as OS user postgres');
    assert.equal((await fs.stat(pgDir)).uid, pgUid);
  }
  const pwStat = await fs.stat(path.join(dataDir, 'pg-password'));
  assert.equal(pwStat.mode & 0o777, 0o600);

  t0 = performance.now();
  await first.stop();
  const stopMs = performance.now() - t0;
  await first.stop(); // idempotent
  assert.equal(isRunning(pid), false);
  assert.equal(await postmasterPid(pgDir), undefined);

  t0 = performance.now();
  const second = await start(dataDir, port);
  const restartMs = performance.now() - t0;
  assert.equal(second.url, first.url);
  const rows = await query(second.url, 'SELECT body FROM notes WHERE id = 1');
  assert.deepEqual(rows.rows, [{ body: 'héllo' }]);
  await second.stop();
  t.diagnostic(
    `first start (initdb) ${Math.round(firstMs)} ms, stop ${Math.round(stopMs)} ms, restart ${Math.round(restartMs)} ms`,
  );
});

test('a port held by another process gives a clear error', { timeout: 30_000 }, async () => {
  const dir = await tempDir();
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await assert.rejects(startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port }), {
    name: 'EmbeddedPostgresError',
    message: `TASKWIRE_PG_PORT ${port} is already in use by another process; set TASKWIRE_PG_PORT to a free port`,
  });
});

test('a stale postmaster.pid (dead PID, or a PID reused by another process) is removed', {
  timeout: 60_000,
}, async () => {
  const dir = await tempDir();
  const dataDir = path.join(dir, 'data');
  const port = await quietPort();
  const db = await start(dataDir, port);
  await query(db.url, 'CREATE TABLE t (x int)');
  await db.stop();

  const pgDir = path.join(dataDir, 'pg');
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
  // This test process is alive but is not postgres: what a recycled PID looks like.
  for (const stalePid of [deadPid, process.pid]) {
    await fs.writeFile(
      path.join(pgDir, 'postmaster.pid'),
      `${stalePid}\n${pgDir}\n1700000000\n${port}\n\n127.0.0.1\n  1234567   0\nready   \n`,
    );
    const logs: string[] = [];
    const again = await start(dataDir, port, logs);
    assert.ok(
      logs.some((l) => l.includes('removing stale') && l.includes(`PID ${stalePid}`)),
      logs.join('\n'),
    );
    await query(again.url, 'SELECT * FROM t');
    await again.stop();
  }
});

test('a server orphaned by a SIGKILLed process is stopped and replaced', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const dataDir = path.join(dir, 'data');
  const pgDir = path.join(dataDir, 'pg');
  const port = await quietPort();
  const child = await startInChild(dataDir, port);
  const orphan = await postmasterPid(pgDir);
  assert.ok(orphan !== undefined);

  child.kill('SIGKILL');
  await waitFor(() => child.signalCode !== null, 10_000, 'the child to die');
  assert.equal(isRunning(orphan), true, 'postgres outlives the SIGKILLed process');

  const logs: string[] = [];
  const db = await start(dataDir, port, logs);
  assert.ok(
    logs.some((l) => l.includes(`stopping PostgreSQL (PID ${orphan})`)),
    logs.join('\n'),
  );
  assert.equal(isRunning(orphan), false);
  const now = await postmasterPid(pgDir);
  assert.ok(now !== undefined && now !== orphan);
  await query(db.url, 'SELECT 1');
  await db.stop();
});

test('a server whose handle this process forgot is stopped and replaced', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const dataDir = path.join(dir, 'data');
  const pgDir = path.join(dataDir, 'pg');
  const port = await quietPort();
  await start(dataDir, port); // handle dropped on purpose (the after hook still holds it)
  const forgotten = await postmasterPid(pgDir);
  assert.ok(forgotten !== undefined);

  const db = await start(dataDir, port);
  await waitFor(() => !isRunning(forgotten), 10_000, 'the forgotten server to exit');
  await query(db.url, 'SELECT 1');
  await db.stop();
});

test('a server run by another live process is left alone', { timeout: 60_000 }, async () => {
  const dir = await tempDir();
  const dataDir = path.join(dir, 'data');
  const pgDir = path.join(dataDir, 'pg');
  const port = await quietPort();
  const child = await startInChild(dataDir, port);
  const theirs = await postmasterPid(pgDir);
  assert.ok(theirs !== undefined);

  await assert.rejects(startEmbeddedPostgres({ dataDir, port }), {
    message: new RegExp(`^another process \\(PID ${child.pid}\\) is running the PostgreSQL in `),
  });
  assert.equal(isRunning(theirs), true);

  child.stdin?.end();
  await waitFor(() => child.exitCode !== null, 15_000, 'the child to stop its server and exit');
  assert.equal(child.exitCode, 0);
  assert.equal(isRunning(theirs), false);
});

test('as root, a data directory closed to others (mktemp -d) is opened for entering only', {
  timeout: 60_000,
  skip: !isRoot && 'needs root',
}, async () => {
  const dir = await tempDir();
  const dataDir = path.join(dir, 'data');
  await fs.mkdir(dataDir, { mode: 0o700 });
  const logs: string[] = [];
  const db = await start(dataDir, await quietPort(), logs);
  assert.equal((await fs.stat(dataDir)).mode & 0o777, 0o701);
  assert.ok(logs.some((l) => l.includes('chmod o+x')));
  await db.stop();
});

test('as root, a data directory postgres cannot reach gives a clear error', {
  timeout: 30_000,
  skip: !isRoot && 'needs root',
}, async () => {
  const dir = await tempDir();
  const locked = path.join(dir, 'locked');
  await fs.mkdir(locked, { mode: 0o700 });
  const port = await quietPort();
  await assert.rejects(startEmbeddedPostgres({ dataDir: path.join(locked, 'data'), port }), {
    message: `OS user postgres (PostgreSQL refuses to run as root) cannot enter ${locked} (mode 0700, owner uid 0); allow it (chmod o+x ${locked}) or set TASKWIRE_DATA_DIR to a directory that postgres can reach`,
  });
});
