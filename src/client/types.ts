// The public shapes of api.md as the client sees them: the task, its events and their payloads.
// Standalone on purpose: the client runs in browsers and must not import server code.

export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'cancelled']);

/** A task, as `GET /api/tasks/:id` and the join reply return it. */
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
  /** Set when failed. */
  error: { message: string; [key: string]: unknown } | null;
  attempt: number;
  max_attempts: number;
  /** The seq of the last event folded into this state. */
  seq: number;
  inserted_at: string;
  updated_at: string;
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

/** What every event pushed on `task:<id>` carries. */
export interface TaskEventBase {
  task_id: string;
  status: TaskStatus;
  progress: number;
  message: string | null;
  seq: number;
  attempt: number;
  /** Server time of the update, milliseconds since the epoch. */
  at: number;
}

/** The payload of each event, by name. */
export interface TaskEventPayloads<R = unknown> {
  started: TaskEventBase;
  progress: TaskEventBase;
  retrying: TaskEventBase & { error: { message: string }; retry_at: string };
  completed: TaskEventBase & { result: R };
  failed: TaskEventBase & { error: { message: string } };
  cancelled: TaskEventBase;
}

export type TaskEventName = keyof TaskEventPayloads;

export const TASK_EVENT_NAMES: readonly TaskEventName[] = [
  'started',
  'progress',
  'retrying',
  'completed',
  'failed',
  'cancelled',
];

/** What `task.on` accepts: the wire events, plus `update` (the new state after any change). */
export type TaskListeners<R = unknown> = {
  [K in TaskEventName]: (payload: TaskEventPayloads<R>[K], task: Task<R>) => void;
} & {
  update: (task: Task<R>) => void;
};

export interface ListOptions {
  status?: TaskStatus;
  type?: string;
  /** 1..100 (server default 20). */
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string;
}

export interface TaskPage {
  tasks: Task[];
  next_cursor: string | null;
}

export interface SubmitOptions {
  /** Header `Idempotency-Key`: a repeat from the same user returns the first task. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}
