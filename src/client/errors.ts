// Every error the client throws, each a subclass of TaskwireError so that callers can branch
// on the class (or on `code`, api.md's error codes) rather than on message text.
import type { Task } from './types.ts';

export class TaskwireError extends Error {
  /** api.md's code (`not_found`, `unauthorized`, ...), or `unreachable`, `closed`, `timeout`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskwireError';
    this.code = code;
  }
}

/** The server could not be reached at all (refused, DNS, TLS, socket never opened). */
export class TaskwireConnectionError extends TaskwireError {
  readonly url: string;

  constructor(url: string, detail?: string, options?: { cause?: unknown }) {
    super('unreachable', `cannot reach taskwire at ${url}${detail ? ` (${detail})` : ''}`, options);
    this.name = 'TaskwireConnectionError';
    this.url = url;
  }
}

/** The server answered with an api.md error body. */
export class TaskwireApiError extends TaskwireError {
  readonly status: number;
  readonly details: unknown;
  /** The whole error object of the body (`{code, message, ...}`). */
  readonly body: Record<string, unknown>;

  constructor(status: number, body: Record<string, unknown>) {
    const code = typeof body.code === 'string' ? body.code : `http_${status}`;
    const message = typeof body.message === 'string' ? body.message : `HTTP ${status}`;
    super(code, message);
    this.name = 'TaskwireApiError';
    this.status = status;
    this.details = body.details;
    this.body = body;
  }
}

/** `task.result()` rejects with this when the task's last attempt failed. */
export class TaskFailedError extends TaskwireError {
  readonly task: Task;
  readonly taskId: string;

  constructor(task: Task) {
    super('task_failed', `task ${task.task_id} failed: ${task.error?.message ?? 'unknown error'}`);
    this.name = 'TaskFailedError';
    this.task = task;
    this.taskId = task.task_id;
  }
}

/** `task.result()` rejects with this when the task was cancelled. */
export class TaskCancelledError extends TaskwireError {
  readonly task: Task;
  readonly taskId: string;

  constructor(task: Task) {
    super('task_cancelled', `task ${task.task_id} was cancelled`);
    this.name = 'TaskCancelledError';
    this.task = task;
    this.taskId = task.task_id;
  }
}
