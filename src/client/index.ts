// The client SDK's public face (`taskwire/client`): browser and Node, on the official `phoenix`
// client. It imports nothing from the server.
export { type ClientOptions, createClient, type SubmitBody, TaskwireClient } from './client.ts';
export {
  TaskCancelledError,
  TaskFailedError,
  TaskwireApiError,
  TaskwireConnectionError,
  TaskwireError,
} from './errors.ts';
export { chunkText, type OutputChunk, type OutputItem, type OutputReset } from './output.ts';
export { TaskHandle } from './task-handle.ts';
export {
  type FollowOptions,
  type ListOptions,
  type SubmitOptions,
  TASK_EVENT_NAMES,
  type Task,
  type TaskAuditEvent,
  type TaskEventBase,
  type TaskEventName,
  type TaskEventPayloads,
  type TaskListeners,
  type TaskPage,
  type TaskStatus,
  TERMINAL_STATUSES,
} from './types.ts';
