// The task and audit-event shapes as stored, and as the public contract (api.md) shows them.
import type pg from 'pg';

export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'cancelled']);

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** A task as api.md defines it: what GET returns and what a join reply carries. */
export interface Task {
  task_id: string;
  type: string;
  status: TaskStatus;
  progress: number;
  message: string | null;
  input: Record<string, unknown>;
  result: unknown;
  error: { message: string; [key: string]: unknown } | null;
  attempt: number;
  max_attempts: number;
  seq: number;
  inserted_at: string;
  updated_at: string;
}

/** A stored task: the public shape plus what only the server needs. */
export interface TaskRecord extends Task {
  owner: string;
}

export interface TaskEventRecord {
  id: number;
  seq: number;
  event: string;
  attempt: number;
  data: Record<string, unknown>;
  inserted_at: string;
}

/** A task to create (status queued). */
export interface NewTask {
  id: string;
  owner: string;
  type: string;
  input: Record<string, unknown>;
  maxAttempts: number;
  idempotencyKey: string | null;
}

/** A pool or a client inside a transaction: every statement function takes one. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export interface TaskRow {
  id: string;
  owner: string;
  type: string;
  status: TaskStatus;
  progress: number;
  message: string | null;
  input: Record<string, unknown>;
  result: unknown;
  error: Task['error'];
  attempt: number;
  max_attempts: number;
  seq: string | number;
  inserted_at: Date;
  updated_at: Date;
}

export const TASK_COLUMNS =
  'id, owner, type, status, progress, message, input, result, error, attempt, max_attempts, seq, inserted_at, updated_at';

export function toTaskRecord(row: TaskRow): TaskRecord {
  return {
    task_id: row.id,
    owner: row.owner,
    type: row.type,
    status: row.status,
    progress: row.progress,
    message: row.message,
    input: row.input,
    result: row.result ?? null,
    error: row.error ?? null,
    attempt: row.attempt,
    max_attempts: row.max_attempts,
    seq: Number(row.seq),
    inserted_at: row.inserted_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** The public shape: drops server-only fields. */
export function publicTask(task: TaskRecord | Task): Task {
  const { owner: _owner, ...rest } = task as TaskRecord;
  return rest;
}
