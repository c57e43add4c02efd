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
  const open = new Set<pg.PoolClient>();
  openClients.set(pool, open);
  pool.on('connect', (client) => {
    client.on('error', (err) => opts.onError?.(err));
    open.add(client);
    client.once('end', () => open.delete(client));
  });
  return pool;
}

/** The connections of each pool made here that have not closed yet. */
const openClients = new WeakMap<pg.Pool, Set<pg.PoolClient>>();

/**
 * Ends the pool and waits (up to `maxWaitMs`) until its connections have closed. pool.end()
 * resolves as soon as it has asked each of them to end, so a database stopped or dropped right
 * after it could still cut one, and a stopped server would log a lost connection it was closing.
 */
export async function closePool(pool: pg.Pool, maxWaitMs = 5000): Promise<void> {
  await pool.end();
  const closing = [...(openClients.get(pool) ?? [])].map(
    (client) => new Promise<void>((resolve) => client.once('end', () => resolve())),
  );
  if (closing.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(closing),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, maxWaitMs);
    }),
  ]);
  clearTimeout(timer);
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
