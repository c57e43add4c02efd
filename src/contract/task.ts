// The task as api.md defines it ("Task", "Errors"): the one owner of this shape. Pure types and
// constants with no imports, so the client SDK (browsers included) may import it as it is.

export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export const TASK_STATUSES: readonly TaskStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set<TaskStatus>([
  'completed',
  'failed',
  'cancelled',
]);

/** api.md "POST /api/tasks": `priority` bounds, and how far ahead `delay_ms` / `run_at` may go (31 days). */
export const PRIORITY_MIN = -100;
export const PRIORITY_MAX = 100;
export const MAX_DELAY_MS = 2_678_400_000;

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** Where a task's streamed output stands: chunks below `start` are void; `next` is the next index. */
export interface OutputCursor {
  start: number;
  next: number;
}

/** A task, as `GET /api/tasks/:id` and a join reply return it. */
export interface Task<R = unknown> {
  task_id: string;
  type: string;
  status: TaskStatus;
  /** 0..1, never decreasing within one attempt. */
  progress: number;
  message: string | null;
  input: Record<string, unknown>;
  /** Set when completed. */
  result: R | null;
  /** Set when failed (and on a task waiting for its next attempt). */
  error: TaskError | null;
  /** 1 on the first run; grows on retry. */
  attempt: number;
  max_attempts: number;
  /** -100..100, higher runs sooner. */
  priority: number;
  /** When a delayed task may start (null: at once). */
  scheduled_at: string | null;
  /** The node running the attempt, else null. */
  node: string | null;
  output: OutputCursor;
  /** The seq of the last event folded into this state. */
  seq: number;
  inserted_at: string;
  updated_at: string;
}

export interface TaskError {
  message: string;
  [key: string]: unknown;
}

/** One line of a task's audit trail (`GET /api/tasks/:id/events`). */
export interface TaskAuditEvent {
  id: number;
  seq: number;
  event: string;
  attempt: number;
  data: Record<string, unknown>;
  inserted_at: string;
}

/** A page of `GET /api/tasks`. */
export interface TaskPage<R = unknown> {
  tasks: Task<R>[];
  next_cursor: string | null;
}
