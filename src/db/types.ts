// The task and audit-event rows as stored, mapped to the contract's shapes (api.md).
import type pg from 'pg';
import type { Task, TaskAuditEvent, TaskStatus } from '../contract/index.ts';

export { isTerminal, type Task, type TaskStatus, TERMINAL_STATUSES } from '../contract/index.ts';

/** A stored task: the public shape plus what only the server needs. */
export interface TaskRecord extends Task {
  owner: string;
}

export type TaskEventRecord = TaskAuditEvent;

/** A task to create (status queued). */
export interface NewTask {
  id: string;
  owner: string;
  type: string;
  input: Record<string, unknown>;
  maxAttempts: number;
  idempotencyKey: string | null;
  /** -100..100, higher runs sooner. */
  priority: number;
  /** Do not start before (null: at once). */
  scheduledAt: Date | null;
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
  priority: number;
  scheduled_at: Date | null;
  node_id: string | null;
  output_start: string | number;
  output_next: string | number;
  seq: string | number;
  inserted_at: Date;
  updated_at: Date;
}

export const TASK_COLUMNS =
  'id, owner, type, status, progress, message, input, result, error, attempt, max_attempts, priority, scheduled_at, node_id, output_start, output_next, seq, inserted_at, updated_at';

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
    priority: row.priority,
    scheduled_at: row.scheduled_at ? row.scheduled_at.toISOString() : null,
    // The row keeps the last node that ran it; the task names one only while it runs.
    node: row.status === 'running' ? row.node_id : null,
    output: { start: Number(row.output_start), next: Number(row.output_next) },
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
