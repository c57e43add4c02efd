// A whole Task as the contract shapes it (a running demo task, attempt 1, seq 1), for tests that
// feed one by hand; each test overrides what it is about. One copy, so a new contract field is
// added here once.
import type { Task } from '../../src/contract/index.ts';
import type { NewTask } from '../../src/db/index.ts';

export function taskFixture(over: Partial<Task> = {}): Task {
  return {
    task_id: '01900000-0000-7000-8000-000000000000',
    type: 'demo',
    status: 'running',
    progress: 0,
    message: null,
    input: {},
    result: null,
    error: null,
    attempt: 1,
    max_attempts: 3,
    priority: 0,
    scheduled_at: null,
    node: null,
    output: { start: 0, next: 0 },
    seq: 1,
    inserted_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

/** A task to create (createTasks' input): a demo task of `owner` with a fresh id, due at once. */
export function newTaskFixture(owner = 'alice'): NewTask {
  return {
    id: crypto.randomUUID(),
    owner,
    type: 'demo',
    input: {},
    maxAttempts: 3,
    idempotencyKey: null,
    priority: 0,
    scheduledAt: null,
  };
}
