// Shared checks for the HTTP contract tests: api.md's error shape, and "nothing half-written"
// (row counts of tasks, audit events and queue jobs unchanged across a rejected request).
import assert from 'node:assert/strict';
import type pg from 'pg';
import { waitFor } from '../helpers/wait.ts';

/** The fields of api.md's Task, and nothing else (no owner, no idempotency key). */
export const TASK_FIELDS = [
  'attempt',
  'error',
  'input',
  'inserted_at',
  'max_attempts',
  'message',
  'node',
  'output',
  'priority',
  'progress',
  'result',
  'scheduled_at',
  'seq',
  'status',
  'task_id',
  'type',
  'updated_at',
];

export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export function assertTaskShape(task: any): void {
  assert.deepEqual(Object.keys(task).sort(), TASK_FIELDS);
  assert.match(task.task_id, UUID_V7);
  assert.equal(typeof task.type, 'string');
  assert.ok(['queued', 'running', 'completed', 'failed', 'cancelled'].includes(task.status), task.status);
  assert.equal(typeof task.progress, 'number');
  assert.ok(task.progress >= 0 && task.progress <= 1);
  assert.ok(task.message === null || typeof task.message === 'string');
  assert.equal(typeof task.input, 'object');
  assert.ok(task.input !== null && !Array.isArray(task.input));
  assert.ok(Number.isInteger(task.attempt));
  assert.ok(Number.isInteger(task.max_attempts));
  assert.ok(Number.isInteger(task.seq));
  assert.ok(Number.isInteger(task.priority) && task.priority >= -100 && task.priority <= 100);
  assert.ok(task.scheduled_at === null || ISO.test(task.scheduled_at));
  assert.ok(task.node === null || (typeof task.node === 'string' && task.status === 'running'));
  assert.ok(Number.isInteger(task.output?.start) && Number.isInteger(task.output?.next));
  assert.ok(task.output.start <= task.output.next);
  assert.match(task.inserted_at, ISO);
  assert.match(task.updated_at, ISO);
}

interface Res {
  status: number;
  body: any;
}

/**
 * api.md's error body: {"error": {"code", "message", ...details}}, with the expected status and
 * code, and no stack trace anywhere in it.
 */
export function assertError(res: Res, status: number, code: string): any {
  assert.equal(
    res.status,
    status,
    `expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`,
  );
  assert.equal(typeof res.body, 'object', `error body is not JSON: ${String(res.body)}`);
  assert.equal(res.body.error?.code, code, JSON.stringify(res.body));
  assert.equal(typeof res.body.error.message, 'string');
  assert.ok(res.body.error.message.length > 0);
  const text = JSON.stringify(res.body);
  assert.doesNotMatch(text, /\bat .+\.(ts|js):\d+/, 'a stack trace leaked');
  assert.doesNotMatch(text, /"stack"/, 'a stack trace leaked');
  return res.body.error;
}

/** A 422 validation_failed whose `details` name `field` (and, for clarity, so does the message). */
export function assertValidation(res: Res, field: string): void {
  const error = assertError(res, 422, 'validation_failed');
  assert.ok(Array.isArray(error.details), `no details: ${JSON.stringify(res.body)}`);
  const fields = error.details.map((d: { field: string }) => d.field);
  assert.ok(fields.includes(field), `details name ${JSON.stringify(fields)}, not ${field}`);
  for (const d of error.details) assert.equal(typeof d.message, 'string');
}

export interface RowCounts {
  tasks: number;
  events: number;
  jobs: number;
}

export async function rowCounts(pool: pg.Pool): Promise<RowCounts> {
  const { rows } = await pool.query<{ tasks: number; events: number; jobs: number }>(
    `select (select count(*) from taskwire.tasks)::int as tasks,
            (select count(*) from taskwire.task_events)::int as events,
            (select count(*) from graphile_worker._private_jobs)::int as jobs`,
  );
  return rows[0];
}

/**
 * Waits (bounded) until no task is queued or running and no job is left, so that counts taken
 * around a request are not moved by earlier work finishing meanwhile.
 */
export async function quiesce(pool: pg.Pool): Promise<RowCounts> {
  return waitFor(async () => {
    const { rows } = await pool.query<{ active: number }>(
      `select (select count(*) from taskwire.tasks where status in ('queued', 'running'))::int
            + (select count(*) from graphile_worker._private_jobs)::int as active`,
    );
    return rows[0].active === 0 ? rowCounts(pool) : null;
  }, 'no task in flight');
}

/** Runs `request` and checks it left no task, audit event or job behind. */
export async function nothingWritten<T>(pool: pg.Pool, request: () => Promise<T>): Promise<T> {
  const before = await quiesce(pool);
  const result = await request();
  assert.deepEqual(await rowCounts(pool), before, 'a rejected request wrote rows');
  return result;
}
