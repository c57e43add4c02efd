// Why a queued task waits, and how many wait for each reason (api.md "Fair scheduling"): its
// start time (scheduled_at, or its next attempt's after a failed one) has not come (`scheduled`), its owner or its type is at its cap of running tasks
// (`user_limit`, `type_limit`), or it waits for a free worker and its turn (`turn`). Read at the
// time of asking, from the rows of running attempts, as the claim counts them.

import type { Queryable } from '../types.ts';
import type { Caps } from './attempts.ts';

export type WaitReason = 'scheduled' | 'user_limit' | 'type_limit' | 'turn';
export const WAIT_REASONS: readonly WaitReason[] = ['scheduled', 'user_limit', 'type_limit', 'turn'];

const REASON = `case
    when q.not_before > now() then 'scheduled'
    when $1::int is not null and (select count(*) from taskwire.tasks r
                                   where r.owner = q.owner and r.status = 'running') >= $1::int then 'user_limit'
    when ($2::jsonb ->> q.type) is not null and (select count(*) from taskwire.tasks r
                                   where r.type = q.type and r.status = 'running') >= ($2::jsonb ->> q.type)::int
      then 'type_limit'
    else 'turn'
  end`;

/** Why the queued task `id` waits (null when it is not queued). */
export async function waitReason(q: Queryable, id: string, caps: Caps): Promise<WaitReason | null> {
  const { rows } = await q.query<{ reason: WaitReason }>({
    name: 'taskwire_wait_reason',
    text: `select ${REASON} as reason from taskwire.tasks q where q.id = $3 and q.status = 'queued'`,
    values: [caps.user, JSON.stringify(caps.types), id],
  });
  return rows[0]?.reason ?? null;
}

export interface WaitingCounts {
  /** Queued tasks by the reason they wait. */
  count: Record<WaitReason, number>;
  /**
   * Seconds the longest-waiting task of each reason has waited: since it was due (created, or its
   * start time came), or for `scheduled`, since it was created.
   */
  oldestSeconds: Record<WaitReason, number>;
}

/**
 * Queued tasks by reason, for /metrics at scrape time. The running counts are taken once per
 * owner and type (not once per task), so a scrape costs one pass over the queued tasks.
 */
export async function waitingCounts(q: Queryable, caps: Caps): Promise<WaitingCounts> {
  const { rows } = await q.query<{ reason: WaitReason; n: number; oldest: number }>({
    name: 'taskwire_waiting_counts',
    text: `with running_owners as (
         select owner, count(*) as n from taskwire.tasks where status = 'running' group by owner
       ), running_types as (
         select type, count(*) as n from taskwire.tasks where status = 'running' group by type
       ), reasons as (
         select case
             when q.not_before > now() then 'scheduled'
             when $1::int is not null and coalesce(ro.n, 0) >= $1::int then 'user_limit'
             when ($2::jsonb ->> q.type) is not null and coalesce(rt.n, 0) >= ($2::jsonb ->> q.type)::int
               then 'type_limit'
             else 'turn'
           end as reason,
           case when q.not_before > now() then extract(epoch from now() - q.inserted_at)
                else extract(epoch from now() - greatest(q.inserted_at, coalesce(q.not_before, q.inserted_at)))
           end as waited
         from taskwire.tasks q
         left join running_owners ro on ro.owner = q.owner
         left join running_types rt on rt.type = q.type
        where q.status = 'queued'
       )
       select reason, count(*)::int as n, max(waited)::float8 as oldest from reasons group by reason`,
    values: [caps.user, JSON.stringify(caps.types)],
  });
  const count = Object.fromEntries(WAIT_REASONS.map((r) => [r, 0])) as Record<WaitReason, number>;
  const oldestSeconds = { ...count };
  for (const r of rows) {
    count[r.reason] = r.n;
    oldestSeconds[r.reason] = Math.max(0, r.oldest);
  }
  return { count, oldestSeconds };
}
