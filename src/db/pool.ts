// The PostgreSQL pool shared by taskwire and the queue. Connection and statement waits are
// bounded so that a database outage turns into a 503 quickly instead of a hang.
import pg from 'pg';

export interface PoolOptions {
  connectionString: string;
  max: number;
  /** Bound on waiting for a connection and on a single statement. */
  timeoutMs: number;
  onError?: (err: Error) => void;
}

export function createPool(opts: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max,
    connectionTimeoutMillis: opts.timeoutMs,
    query_timeout: opts.timeoutMs * 6,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // A client that loses its server emits 'error' (idle ones through the pool, checked-out ones on
  // themselves); without a listener the process would die. The query in flight rejects anyway.
  pool.on('error', (err) => opts.onError?.(err));
  pool.on('connect', (client) => {
    client.on('error', (err) => opts.onError?.(err));
  });
  return pool;
}

/** True when the database answers a trivial query within the pool's bounds. */
export async function ping(pool: pg.Pool): Promise<boolean> {
  try {
    await pool.query('select 1');
    return true;
  } catch {
    return false;
  }
}
