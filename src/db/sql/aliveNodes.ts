// The nodes whose heartbeat in taskwire.nodes is fresher than the threshold: who a starting node
// should hear from on the bus before it runs anything.
import type { Queryable } from '../types.ts';

export async function aliveNodes(q: Queryable, deadAfterMs: number): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `select id from taskwire.nodes where heartbeat_at > now() - make_interval(secs => $1::float8 / 1000)`,
    [deadAfterMs],
  );
  return rows.map((r) => r.id);
}
