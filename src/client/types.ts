// The public shapes of api.md as the client sees them: re-exported from the contract part (whose
// task.ts and events.ts import nothing, so no server code reaches a browser), plus the SDK's own.

export { TASK_EVENT_NAMES } from '../contract/events.ts';
export type {
  OutputCursor,
  Task,
  TaskAuditEvent,
  TaskError,
  TaskEventBase,
  TaskEventName,
  TaskEventPayloads,
  TaskPage,
  TaskStatus,
} from '../contract/index.ts';
export { TERMINAL_STATUSES } from '../contract/task.ts';

import type { Task, TaskEventName, TaskEventPayloads, TaskStatus } from '../contract/index.ts';

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

export interface SubmitOptions {
  /** Header `Idempotency-Key`: a repeat from the same user returns the first task. */
  idempotencyKey?: string;
  signal?: AbortSignal;
  /** -100..100 (default 0): higher runs sooner (sent as `priority`). */
  priority?: number;
  /** Do not start before this time (sent as `run_at`); in the past: at once. Not with delayMs. */
  runAt?: Date | string;
  /** Do not start for this many milliseconds (sent as `delay_ms`). Not with runAt. */
  delayMs?: number;
}
