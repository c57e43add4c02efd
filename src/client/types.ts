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
import type { OutputChunk, OutputReset } from './output.ts';

/**
 * What `task.on` accepts: the wire events, `update` (the new state after any change), and the
 * output: `output` (each new valid chunk, once, in index order) and `output_reset` (a new attempt
 * starts the output over: clear what you showed).
 */
export type TaskListeners<R = unknown> = {
  [K in TaskEventName]: (payload: TaskEventPayloads<R>[K], task: Task<R>) => void;
} & {
  update: (task: Task<R>) => void;
  output: (chunk: OutputChunk, task: Task<R>) => void;
  output_reset: (reset: OutputReset, task: Task<R>) => void;
};

/** How a client follows a task (`tw.watch(id, opts)`, `tw.submit(body, opts)`). */
export interface FollowOptions {
  /**
   * Follow the task's streamed output (default true): the handle collects it (`task.text`,
   * `task.output()`) and every (re)join asks for exactly what it is missing. false: progress and
   * state only, no output is fetched.
   */
  output?: boolean;
  /**
   * The first output index wanted (default 0: the whole valid output). Give the `next` you stored
   * to resume without fetching again what you already hold; if the output was started over past
   * it meanwhile, the handle's first item is a reset.
   */
  outputFrom?: number;
}

export interface ListOptions {
  status?: TaskStatus;
  type?: string;
  /** 1..100 (server default 20). */
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string;
}

export interface SubmitOptions extends FollowOptions {
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
