// Streamed output in segments: writeOutput stores the pending chunks of many tasks in ONE
// statement (a segment per task, with the task's output cursor moved on), fenced on the attempt
// so a process that lost its attempt cannot write; readOutput pages a task's chunks by index
// (index-backed on the primary key), for a resume or the whole output of a finished task.
import type { Queryable } from '../types.ts';

/** Consecutive chunks of one task and attempt, from index `first`. */
export interface OutputSegment {
  taskId: string;
  attempt: number;
  first: number;
  chunks: unknown[];
  /** Bytes of the chunks as JSON (for limits and figures). */
  bytes: number;
}

export interface OutputChunk {
  index: number;
  data: unknown;
  attempt: number;
}

/**
 * Writes the segments (at most one per task per flush, in index order) and moves each task's
 * `output_next` past them. Returns the ids of the tasks whose segments were written; the others
 * were refused (not the current running attempt).
 */
export async function writeOutput(q: Queryable, segments: OutputSegment[]): Promise<Set<string>> {
  if (segments.length === 0) return new Set();
  const { rows } = await q.query<{ id: string }>({
    name: 'taskwire_write_output',
    text: `with v as (
       select * from jsonb_to_recordset($1::jsonb)
         as v(id uuid, attempt int, first bigint, chunks jsonb, bytes int)
     ), a as (
       -- One row per task: an UPDATE ... FROM with several matches updates once, with any of them.
       select id, attempt, max(first + jsonb_array_length(chunks)) as upto from v group by id, attempt
     ), t as (
       update taskwire.tasks t
          set output_next = greatest(t.output_next, a.upto)
         from a
        where t.id = a.id and t.attempt = a.attempt and t.status = 'running'
       returning t.id
     ), o as (
       insert into taskwire.task_output (task_id, first_idx, attempt, chunks, bytes)
       select v.id, v.first, v.attempt, v.chunks, v.bytes from v join t on t.id = v.id
       on conflict (task_id, first_idx) do nothing
     )
     select id from t`,
    values: [
      JSON.stringify(
        segments.map((s) => ({
          id: s.taskId,
          attempt: s.attempt,
          first: s.first,
          chunks: s.chunks,
          bytes: s.bytes,
        })),
      ),
    ],
  });
  return new Set(rows.map((r) => r.id));
}

/**
 * Chunks of a task with `from <= index < until`, in index order, at most `limit` of them (whole
 * segments are read; the first may start before `from`).
 */
export async function readOutput(
  q: Queryable,
  taskId: string,
  from: number,
  until: number,
  limit: number,
): Promise<OutputChunk[]> {
  if (from >= until) return [];
  const { rows } = await q.query<{ first_idx: string; attempt: number; chunks: unknown[] }>({
    name: 'taskwire_read_output',
    text: `select first_idx, attempt, chunks from taskwire.task_output
            where task_id = $1 and first_idx < $3
              and first_idx >= (select coalesce(max(first_idx), 0) from taskwire.task_output
                                 where task_id = $1 and first_idx <= $2)
            order by first_idx
            limit $4`,
    values: [taskId, from, until, Math.max(1, Math.ceil(limit / 8))],
  });
  const out: OutputChunk[] = [];
  for (const row of rows) {
    const first = Number(row.first_idx);
    for (let i = 0; i < row.chunks.length; i++) {
      const index = first + i;
      if (index < from || index >= until) continue;
      out.push({ index, data: row.chunks[i], attempt: row.attempt });
      if (out.length >= limit) return out;
    }
  }
  return out;
}
