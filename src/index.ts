// taskwire's public API: define task types, and embed the server in your own process.
export type { Config } from './config/index.ts';
export type { Task, TaskStatus } from './db/index.ts';
export { type StartOptions, startServer, type TaskwireServer } from './server/index.ts';
export {
  defineTask,
  type TaskContext,
  type TaskDefinition,
  type TaskEventName,
  type TaskEventPayload,
  type TaskLogger,
  type TaskType,
} from './tasks/index.ts';
