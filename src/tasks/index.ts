// The tasks part's public face: actors, registry, supervisor, snapshotter, runner, task types.
export { TaskActor } from './actor.ts';
export { demoTask, sleep } from './demo.ts';
export { AttemptTimeoutError, CancelledError, InputError, ShutdownError } from './errors.ts';
export { ESSENTIAL_EVENTS, type TaskEvent, type TaskEventName, type TaskEventPayload } from './events.ts';
export { TaskHub, type TaskSubscriber } from './hub.ts';
export { Registry } from './registry.ts';
export { type Outcome, Runner, retryDelay } from './runner.ts';
export { type CancelResult, type CreateRequest, type Subscription, TaskService } from './service.ts';
export { Snapshotter } from './snapshotter.ts';
export { Supervisor } from './supervisor.ts';
export {
  defineTask,
  type FieldError,
  isTaskType,
  MAX_TIMEOUT_MS,
  type TaskContext,
  type TaskDefinition,
  type TaskLogger,
  type TaskType,
  TaskTypes,
} from './task-type.ts';
