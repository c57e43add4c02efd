// The tasks part's public face: actors, registry, supervisor, snapshotter, runner, the feed of
// task events onto topics, task types, and the service that http and channels use.
export {
  type OutputLimits,
  type PendingEnd,
  type PendingOutput,
  TaskActor,
  type Transition,
} from './actor.ts';
export { demoTask, sleep } from './demo.ts';
export {
  AttemptTimeoutError,
  CancelledError,
  InputError,
  OutputLimitError,
  ShutdownError,
} from './errors.ts';
export { TaskFeed, type TaskTopics, topicsOf } from './feed.ts';
export { generatedText, generateTask } from './generate.ts';
export { OutputWriter } from './output-writer.ts';
export { Pruner, type PrunerOptions } from './pruner.ts';
export { Registry } from './registry.ts';
export { type Outcome, Runner, retryDelay } from './runner.ts';
export { MAX_BACKFILL, Scheduler, type SchedulerOptions } from './scheduler.ts';
export {
  ACTIVE_TASKS_LIMIT,
  type CancelResult,
  type CreateRequest,
  type JoinResult,
  type RetryResult,
  TaskService,
} from './service.ts';
export { Snapshotter } from './snapshotter.ts';
export { bucketSeconds, StatsReader, type StatsReaderOptions, StatsTicker } from './stats.ts';
export { Supervisor } from './supervisor.ts';
export {
  defineTask,
  type FieldError,
  isTaskType,
  MAX_TIMEOUT_MS,
  type Schedule,
  type ScheduleDefinition,
  type TaskContext,
  type TaskDefinition,
  type TaskLogger,
  type TaskType,
  TaskTypes,
} from './task-type.ts';
