// A fresh database per run on the machine's PostgreSQL (BENCH_DATABASE_URL, else
// TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres), dropped afterwards.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

export const ADMIN_URL =
  process.env.BENCH_DATABASE_URL ??
  process.env.TEST_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The URL of database `name` on the machine's PostgreSQL. */
function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createDatabase(): Promise<BenchDatabase> {
  const name = `taskwire_bench_${randomBytes(5).toString('hex')}`;
  await admin(async (c) => {
    await c.query(`create database ${name}`);
    // Diagnostics: every statement of the run, with its duration, in the PostgreSQL server log.
    if (process.env.BENCH_PG_LOG_STATEMENTS === '1')
      await c.query(`alter database ${name} set log_min_duration_statement = 0`);
  });
  return {
    url: databaseUrl(name),
    name,
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

async function autovacuumOn(c: pg.Client): Promise<boolean> {
  const { rows } = await c.query<{ on: boolean }>("select current_setting('autovacuum') = 'on' as on");
  return rows[0].on;
}

/** Whether the machine's PostgreSQL runs autovacuum (this machine's CI setting turns it off). */
export function machineAutovacuumOn(): Promise<boolean> {
  return admin(autovacuumOn);
}

export const VACUUM_NOTE =
  "this PostgreSQL runs with autovacuum off: the run's database was vacuumed and analyzed between the warm-up and the measured phase, as autovacuum would have done";

/**
 * What autovacuum would have done by now, on a PostgreSQL that runs without it (this machine's
 * CI setting): VACUUM ANALYZE of the run's database, so the measured phase neither scans the
 * warm-up's dead rows nor runs plans made on empty tables. True when it ran.
 */
export async function vacuumIfNoAutovacuum(dbName: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: databaseUrl(dbName) });
  await c.connect();
  try {
    if (await autovacuumOn(c)) return false;
    await c.query('vacuum analyze');
    return true;
  } finally {
    await c.end();
  }
}

/**
 * Statements a database executed, counted in PostgreSQL's server log: with
 * BENCH_PG_LOG_STATEMENTS=1 every statement of a run's database is logged with its duration
 * (`log_min_duration_statement = 0`). The log is BENCH_PG_LOG, else the newest file of
 * /var/log/postgresql; its `log_line_prefix` must name the database (`%d`, Debian's default).
 * Undefined when statements are not logged or the log cannot be read.
 */
export function statementCounter(dbName: string): { count(): number } | undefined {
  if (process.env.BENCH_PG_LOG_STATEMENTS !== '1') return undefined;
  let file = process.env.BENCH_PG_LOG;
  try {
    if (!file) {
      const dir = '/var/log/postgresql';
      file = readdirSync(dir)
        .filter((f) => f.endsWith('.log'))
        .map((f) => path.join(dir, f))
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
    }
    if (!file) return undefined;
    const log = file;
    const from = statSync(log).size;
    const marker = `@${dbName} LOG:  duration: `;
    return {
      count() {
        const to = statSync(log).size;
        const buf = Buffer.alloc(Math.max(0, to - from));
        const fd = openSync(log, 'r');
        try {
          readSync(fd, buf, 0, buf.length, from);
        } finally {
          closeSync(fd);
        }
        let n = 0;
        for (const line of buf.toString('utf8').split('\n')) {
          const at = line.indexOf(marker);
          if (at < 0) continue;
          // Extended protocol logs parse, bind and execute apart: count executions only.
          const rest = line.slice(at + marker.length);
          if (/^[\d.]+ ms {2}(execute|statement:)/.test(rest)) n += 1;
        }
        return n;
      },
    };
  } catch {
    return undefined;
  }
}
