// The events a task pushes to its subscribers (api.md "Events pushed on task:<id>").
import type { TaskStatus } from '../db/index.ts';

export type TaskEventName = 'started' | 'progress' | 'retrying' | 'completed' | 'failed' | 'cancelled';

/** Events a slow subscriber must never lose (progress alone may be conflated). */
export const ESSENTIAL_EVENTS: ReadonlySet<TaskEventName> = new Set([
  'started',
  'retrying',
  'completed',
  'failed',
  'cancelled',
]);

export interface TaskEventPayload {
  task_id: string;
  status: TaskStatus;
  progress: number;
  message: string | null;
  seq: number;
  attempt: number;
  /** Server time of the update, integer milliseconds since the epoch. */
  at: number;
  result?: unknown;
  error?: { message: string };
  retry_at?: string;
}

/**
 * One event, created once and shared by every subscriber. `frames` is a memo that transports
 * fill with their encoding of it, so each event is encoded once per serializer, not once per
 * subscriber.
 */
export interface TaskEvent {
  readonly name: TaskEventName;
  readonly payload: TaskEventPayload;
  readonly frames: Record<string, string | undefined>;
}

export function makeEvent(name: TaskEventName, payload: TaskEventPayload): TaskEvent {
  return { name, payload, frames: {} };
}
