// Domain errors of the tasks part; http maps them to api.md's codes.
import type { FieldError } from './task-type.ts';

/** The request's content is wrong (unknown type, bad input): 422 validation_failed. */
export class InputError extends Error {
  override name = 'InputError';
  readonly fields: FieldError[];
  constructor(fields: FieldError[]) {
    super(`invalid ${fields.map((f) => f.field).join(', ')}`);
    this.fields = fields;
  }
}

/** Why an attempt's signal fired. */
export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor() {
    super('the task was cancelled');
  }
}

export class AttemptTimeoutError extends Error {
  override name = 'AttemptTimeoutError';
  constructor(ms: number) {
    super(`the attempt timed out after ${ms} ms`);
  }
}

export class ShutdownError extends Error {
  override name = 'ShutdownError';
  constructor() {
    super('the server is shutting down');
  }
}

/** The attempt's output can't go on: the attempt fails, and is not retried (it would again). */
export class OutputError extends Error {
  override name = 'OutputError';
}

/** A handler's output passed a configured limit. */
export class OutputLimitError extends OutputError {
  override name = 'OutputLimitError';
}
