// The queue part's public face: jobs in the caller's transaction, and the worker runtime.
export { enqueueTaskJob, RUN_TASK_JOB, removeTaskJob } from './jobs.ts';
export { Liveness, type LivenessOptions } from './liveness.ts';
export { addWakeups, type FreedSlot, sweepWakeups } from './sql/addWakeups.ts';
export { createTasks } from './sql/createTasks.ts';
export { type RetryRequest, retryTask } from './sql/retryTask.ts';
export { type QueueJob, type QueueWorker, startWorker, type WorkerOptions } from './worker.ts';
