// A fresh PostgreSQL database per test server, on the machine's PostgreSQL (TEST_DATABASE_URL,
// default postgres://postgres@127.0.0.1:5432/postgres), dropped again afterwards.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { closePool, createPool } from '../../src/db/index.ts';

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database a test server runs on, and how to be rid of it. */
export interface Database {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export interface TestDatabase extends Database {
  /**
   * A pool on this database that drop() closes first, waiting until its connections have closed:
   * pool.end() alone resolves before they have, and the forced drop then cut one still closing,
   * an error with no listener left ("terminating connection due to administrator command").
   */
  pool(max?: number): pg.Pool;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `taskwire_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const pools: pg.Pool[] = [];
  return {
    url: url.toString(),
    name,
    pool(max = 2) {
      const pool = createPool({ connectionString: url.toString(), max, timeoutMs: 10_000 });
      pools.push(pool);
      return pool;
    },
    async drop() {
      await Promise.all(pools.splice(0).map((pool) => closePool(pool)));
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}
