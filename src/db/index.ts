// The db part's public face: pool, migrations, the embedded launcher and every statement by name.

export type { EmbeddedPostgres } from './embedded.ts';
export { isDatabaseUnavailable } from './errors.ts';
export { Listener, type ListenerOptions } from './listener.ts';
export { loadMigrations, migrate, silentQueueLogger } from './migrate.ts';
export { closePool, createPool, ping } from './pool.ts';
export { aliveNodes } from './sql/aliveNodes.ts';
export {
  type AttemptEnd,
  type AttemptRetry,
  type Caps,
  type Claim,
  type ClaimResult,
  cancelQueued,
  claimAttempts,
  finishAttempts,
  releaseAttempt,
  requestCancel,
  retryAttempt,
} from './sql/attempts.ts';
export { notifyFrames, pruneSpill, readSpill, spillAndNotify } from './sql/bus.ts';
export { getTask, getTaskByIdempotencyKey } from './sql/getTask.ts';
export { type InFlightCounts, inFlightCounts } from './sql/inFlightCounts.ts';
export { lastScheduledTick, scheduleKey } from './sql/lastScheduledTick.ts';
export { listActiveTasks } from './sql/listActiveTasks.ts';
export { listEvents } from './sql/listEvents.ts';
export { type ListFilter, listTasks } from './sql/listTasks.ts';
export { type OutputChunk, type OutputSegment, readOutput, writeOutput } from './sql/output.ts';
export { PRUNE_LOCK_KEY, pruneBatch, TASK_CHILD_TABLES, type TaskChildTable } from './sql/prune.ts';
export { type Snapshot, writeSnapshots } from './sql/snapshots.ts';
export {
  type FinishedInWindow,
  finishedInWindow,
  inFlightByType,
  type NodeRow,
  nodeStats,
  ownerQueue,
  type StatusTypeCount,
} from './sql/stats.ts';
export {
  WAIT_REASONS,
  type WaitingCounts,
  type WaitReason,
  waitingCounts,
  waitReason,
} from './sql/waitReason.ts';
export { withSnapshot, withTransaction } from './transaction.ts';
export * from './types.ts';

/** Starts the embedded PostgreSQL; its launcher (child processes, readline) loads only when one is wanted. */
export async function startEmbeddedPostgres(
  ...args: Parameters<typeof import('./embedded.ts').startEmbeddedPostgres>
): ReturnType<typeof import('./embedded.ts').startEmbeddedPostgres> {
  const { startEmbeddedPostgres: start } = await import('./embedded.ts');
  return start(...args);
}
