// The events pushed on `task:<id>`, `user:<sub>` and `admin:tasks` (api.md), their payloads, and the
// delivery class of each (design.md): what a slow reader may lose and what it never loses. No
// imports but the task shape, so the client SDK may import it as it is.
import type { Task, TaskError, TaskStatus } from './task.ts';

/** How an event may be treated on its way to a slow reader. */
export type DeliveryClass =
  /** A newer one supersedes it: a slow reader may get only the newest (progress). */
  | 'latest'
  /** Never dropped, never conflated (lifecycle). */
  | 'always'
  /** Never dropped or conflated, in index order; a reader too slow for them is disconnected and resumes by index (output). */
  | 'ordered';

/** What every lifecycle and progress event carries. */
export interface TaskEventBase {
  task_id: string;
  type: string;
  status: TaskStatus;
  progress: number;
  message: string | null;
  seq: number;
  attempt: number;
  /** Server time of the update, integer milliseconds since the epoch. */
  at: number;
  /** On `admin:tasks` only: the task's owner. */
  owner?: string;
}

/** The payload of each task event, by name. */
export interface TaskEventPayloads<R = unknown> {
  started: TaskEventBase;
  progress: TaskEventBase;
  retrying: TaskEventBase & { error: TaskError; retry_at: string };
  completed: TaskEventBase & { result: R };
  failed: TaskEventBase & { error: TaskError };
  cancelled: TaskEventBase;
  retried: TaskEventBase;
}

export type TaskEventName = keyof TaskEventPayloads;

export const TASK_EVENT_NAMES: readonly TaskEventName[] = [
  'started',
  'progress',
  'retrying',
  'completed',
  'failed',
  'cancelled',
  'retried',
];

/** Any payload of a task event. */
export type TaskEventPayload = TaskEventPayloads[TaskEventName];

/** `created`, on `user:<sub>` and `admin:tasks`: the whole new task. */
export type CreatedPayload = Task & { owner?: string };

/** Streamed output, on `task:<id>` only. */
export interface OutputPayload {
  task_id: string;
  index: number;
  data: unknown;
  attempt: number;
}

/** A new attempt starts its output over: chunks below `start` are void. */
export interface OutputResetPayload {
  task_id: string;
  attempt: number;
  start: number;
}

/** Every event name a client may see, with its delivery class (`stats`: on `admin:tasks`, GET /api/stats's figures). */
export const EVENT_CLASS: Readonly<
  Record<TaskEventName | 'created' | 'output' | 'output_reset' | 'stats', DeliveryClass>
> = {
  created: 'always',
  started: 'always',
  progress: 'latest',
  retrying: 'always',
  completed: 'always',
  failed: 'always',
  cancelled: 'always',
  retried: 'always',
  output: 'ordered',
  output_reset: 'ordered',
  stats: 'latest',
};
