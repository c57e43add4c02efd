// The last tick a schedule created a task for (any node), read at start to backfill the ticks
// missed while every node was down. Scheduled tasks carry the idempotency key
// `schedule:<type>:<tick ISO time>` under the schedule owner, which also makes each tick exactly
// once across nodes (the unique index on owner and idempotency key).
import type { Queryable } from '../types.ts';

/** The idempotency key of the task of one tick of a type's schedule. */
export function scheduleKey(type: string, tick: Date): string {
  return `schedule:${type}:${tick.toISOString()}`;
}

export async function lastScheduledTick(q: Queryable, owner: string, type: string): Promise<Date | null> {
  const { rows } = await q.query<{ key: string }>(
    `select idempotency_key as key from taskwire.tasks
      where owner = $1 and type = $2 and starts_with(idempotency_key, $3)
      order by inserted_at desc, id desc limit 1`,
    [owner, type, scheduleKey(type, new Date(0)).slice(0, -24)],
  );
  if (!rows[0]) return null;
  const at = Date.parse(rows[0].key.slice(-24));
  return Number.isNaN(at) ? null : new Date(at);
}
