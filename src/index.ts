// taskwire's public API: define task types, and embed the server in your own process.
export type { Config } from './config/index.ts';
export type {
  Task,
  TaskEventName,
  TaskEventPayload,
  TaskEventPayloads,
  TaskStatus,
} from './contract/index.ts';
export { type StartOptions, startServer, type TaskwireServer } from './server/index.ts';
export {
  defineTask,
  type ScheduleDefinition,
  type TaskContext,
  type TaskDefinition,
  type TaskLogger,
  type TaskType,
} from './tasks/index.ts';
