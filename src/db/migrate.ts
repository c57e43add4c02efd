// Applies the versioned SQL files in ./migrations, then graphile-worker's own schema, all under
// one session-level advisory lock so that processes starting at once never race.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Logger, runMigrations as runQueueMigrations } from 'graphile-worker';
import type pg from 'pg';

const MIGRATIONS_DIR = path.join(import.meta.dirname, 'migrations');
/** Arbitrary constant: the advisory lock key that serialises migrations. */
const MIGRATION_LOCK_KEY = 7_451_203_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number.parseInt(file, 10),
      name: file.replace(/\.sql$/, ''),
      sql: await readFile(path.join(dir, file), 'utf8'),
    })),
  );
}

/** Returns the versions it applied (empty when the schema was already current). */
export async function migrate(pool: pg.Pool, queueSchema = 'graphile_worker'): Promise<number[]> {
  const migrations = await loadMigrations();
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query('create schema if not exists taskwire');
      await client.query(
        `create table if not exists taskwire.schema_migrations (
           version integer primary key, name text not null, applied_at timestamptz not null default now())`,
      );
      const { rows } = await client.query<{ version: number }>(
        'select version from taskwire.schema_migrations',
      );
      const done = new Set(rows.map((r) => r.version));
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await client.query('begin');
        try {
          await client.query(m.sql);
          await client.query('insert into taskwire.schema_migrations (version, name) values ($1, $2)', [
            m.version,
            m.name,
          ]);
          await client.query('commit');
          applied.push(m.version);
        } catch (err) {
          await client.query('rollback');
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
        }
      }
      await runQueueMigrations({ pgPool: pool, schema: queueSchema, logger: silentQueueLogger });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
  return applied;
}

/** graphile-worker logs through this; taskwire wires its own logger where it matters. */
export const silentQueueLogger = new Logger(() => () => {});
