// The PostgreSQL bus's statements: a batch of NOTIFYs in one round trip (with the large messages
// it references stored first, in the same transaction), reading those back, pruning them.
import type { Queryable } from '../types.ts';

/** Sends `payloads[i]` on `channels[i]`, in order, in one statement (one transaction). */
export async function notifyFrames(q: Queryable, channels: string[], payloads: string[]): Promise<void> {
  await q.query({
    name: 'taskwire_bus_notify',
    text: 'select pg_notify(c, p) from unnest($1::text[], $2::text[]) as f(c, p)',
    values: [channels, payloads],
  });
}

/**
 * Stores each large message under its ref, then sends the notifications (some of which carry
 * those refs): one transaction, so a notification is never seen before the row it points at.
 */
export async function spillAndNotify(
  q: Queryable,
  refs: string[],
  bodies: string[],
  channels: string[],
  payloads: string[],
): Promise<void> {
  await q.query({
    name: 'taskwire_bus_spill_notify',
    text: `with spill as (
             insert into taskwire.bus_spill (ref, body) select * from unnest($1::text[], $2::text[]))
           select pg_notify(c, p) from unnest($3::text[], $4::text[]) as f(c, p)`,
    values: [refs, bodies, channels, payloads],
  });
}

/** The stored bodies of `refs` (those still there). */
export async function readSpill(q: Queryable, refs: string[]): Promise<Map<string, string>> {
  const { rows } = await q.query<{ ref: string; body: string }>({
    name: 'taskwire_bus_read_spill',
    text: 'select ref, body from taskwire.bus_spill where ref = any($1::text[])',
    values: [refs],
  });
  return new Map(rows.map((r) => [r.ref, r.body]));
}

/** Deletes stored messages older than `ttlMs`; returns how many. */
export async function pruneSpill(q: Queryable, ttlMs: number): Promise<number> {
  const { rowCount } = await q.query({
    name: 'taskwire_bus_prune_spill',
    text: `delete from taskwire.bus_spill where created_at < now() - $1 * interval '1 millisecond'`,
    values: [ttlMs],
  });
  return rowCount ?? 0;
}
