// The public way to add a task type: defineTask({ name, run(ctx), ... }). A handler gets a
// context, reports progress through it, honours ctx.signal, and returns the result. A type may cap
// its running tasks (`concurrency`) and run on a cron schedule (`schedule`); both are checked here,
// so a bad one stops the server at start with an error naming the type.
import { Cron } from 'croner';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

export interface TaskLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

export interface TaskContext<Input = Record<string, unknown>> {
  readonly taskId: string;
  readonly input: Input;
  /** 1 on the first run; grows on retry. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Fires on cancel, on timeout and on shutdown: stop work and return (or throw) soon. */
  readonly signal: AbortSignal;
  /** Report progress: fraction 0..1 (never decreasing within an attempt) and optional text. */
  progress(fraction: number, message?: string): void;
  /**
   * Append a chunk (a string or any JSON value) to the task's streamed output; returns its index
   * at once (no database on the call). Throws past the output limits (the attempt then fails).
   */
  output(chunk: unknown): number;
  readonly log: TaskLogger;
}

export interface TaskDefinition<Input = Record<string, unknown>, Result = unknown> {
  name: string;
  run(ctx: TaskContext<Input>): Promise<Result> | Result;
  /** Attempts before the task fails for good (1..25). Overridden per task by `max_attempts`. */
  maxAttempts?: number;
  /** An attempt running longer than this is aborted and fails (retried while attempts remain). */
  timeoutMs?: number;
  /** A typebox / JSON schema for the input; a POST that does not match gets 422. */
  input?: TSchema;
  /** At most this many tasks of the type run at once, across all nodes. */
  concurrency?: number;
  /**
   * Creates a task of this type on a cron schedule (5 fields, or 6 with seconds first; UTC),
   * exactly once per tick across all nodes, owned by TASKWIRE_SCHEDULE_OWNER. A string is the
   * cron expression with input `{}`.
   */
  schedule?: string | ScheduleDefinition;
}

export interface ScheduleDefinition {
  cron: string;
  /** The input of each scheduled task (checked against the type's input schema at start). */
  input?: Record<string, unknown>;
  /** Ticks missed while every node was down are created at the next start (default false: skipped). */
  backfill?: boolean;
  /** -100..100, like a POST's `priority`. */
  priority?: number;
}

/** A type's schedule, parsed. */
export interface Schedule {
  readonly cron: string;
  readonly input: Record<string, unknown>;
  readonly backfill: boolean;
  readonly priority: number;
  /** The first tick strictly after `after`. */
  next(after: Date): Date | null;
}

export interface FieldError {
  field: string;
  message: string;
}

export interface TaskType {
  readonly name: string;
  readonly maxAttempts: number | undefined;
  readonly timeoutMs: number | undefined;
  readonly run: TaskDefinition['run'];
  /** Null when the input is acceptable, else the offending fields. */
  validate(input: unknown): FieldError[] | null;
  /** The input schema, for API docs. */
  readonly inputSchema: TSchema | undefined;
  /** Running tasks of this type across all nodes (undefined: no cap). */
  readonly concurrency: number | undefined;
  readonly schedule: Schedule | undefined;
}

const TYPE_NAME = /^[a-z][a-z0-9_.:-]{0,63}$/i;
/** graphile-worker re-offers a job whose lock is older than 4 hours, so no attempt may last that long. */
export const MAX_TIMEOUT_MS = 3 * 60 * 60 * 1000;

export function defineTask<Input = Record<string, unknown>, Result = unknown>(
  def: TaskDefinition<Input, Result>,
): TaskType {
  if (!TYPE_NAME.test(def.name))
    throw new TypeError(`task type name ${JSON.stringify(def.name)} is not valid`);
  if (typeof def.run !== 'function') throw new TypeError(`task type ${def.name}: run must be a function`);
  if (
    def.maxAttempts !== undefined &&
    !(Number.isInteger(def.maxAttempts) && def.maxAttempts >= 1 && def.maxAttempts <= 25)
  ) {
    throw new TypeError(`task type ${def.name}: maxAttempts must be an integer in 1..25`);
  }
  if (
    def.timeoutMs !== undefined &&
    !(Number.isInteger(def.timeoutMs) && def.timeoutMs > 0 && def.timeoutMs <= MAX_TIMEOUT_MS)
  ) {
    throw new TypeError(`task type ${def.name}: timeoutMs must be an integer in 1..${MAX_TIMEOUT_MS}`);
  }
  if (
    def.concurrency !== undefined &&
    !(Number.isInteger(def.concurrency) && def.concurrency >= 1 && def.concurrency <= 100_000)
  ) {
    throw new TypeError(`task type ${def.name}: concurrency must be an integer in 1..100000`);
  }
  const compiled = def.input ? Compile(def.input) : undefined;
  const validate = (input: unknown): FieldError[] | null => {
    if (!compiled || compiled.Check(input)) return null;
    return [...compiled.Errors(input)].map((e) => ({
      field:
        e.instancePath.replace(/^\//, '').replaceAll('/', '.') ||
        (e.params as { requiredProperties?: string[] }).requiredProperties?.join(',') ||
        '(input)',
      message: e.message,
    }));
  };
  return {
    name: def.name,
    maxAttempts: def.maxAttempts,
    timeoutMs: def.timeoutMs ?? MAX_TIMEOUT_MS,
    run: def.run as TaskDefinition['run'],
    inputSchema: def.input,
    validate,
    concurrency: def.concurrency,
    schedule: def.schedule === undefined ? undefined : parseSchedule(def.name, def.schedule, validate),
  };
}

function parseSchedule(
  type: string,
  def: string | ScheduleDefinition,
  validate: (input: unknown) => FieldError[] | null,
): Schedule {
  const spec = typeof def === 'string' ? { cron: def } : def;
  if (typeof spec !== 'object' || spec === null || typeof spec.cron !== 'string') {
    throw new TypeError(
      `task type ${type}: schedule must be a cron expression or { cron, input?, backfill? }`,
    );
  }
  let cron: Cron;
  try {
    // UTC, so that every node agrees on the ticks; 5 fields, or 6 with seconds first.
    cron = new Cron(spec.cron, { paused: true, timezone: 'UTC', mode: '5-or-6-parts' });
  } catch (err) {
    throw new TypeError(
      `task type ${type}: schedule ${JSON.stringify(spec.cron)} is not a valid cron expression (${(err as Error).message})`,
    );
  }
  if (cron.nextRun(new Date()) === null) {
    throw new TypeError(`task type ${type}: schedule ${JSON.stringify(spec.cron)} never fires`);
  }
  const input = spec.input ?? {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new TypeError(`task type ${type}: schedule input must be an object`);
  }
  const fields = validate(input);
  if (fields) {
    throw new TypeError(
      `task type ${type}: schedule input does not match the type's input schema: ${fields.map((f) => `${f.field} ${f.message}`).join('; ')}`,
    );
  }
  const priority = spec.priority ?? 0;
  if (!(Number.isInteger(priority) && priority >= -100 && priority <= 100)) {
    throw new TypeError(`task type ${type}: schedule priority must be an integer in -100..100`);
  }
  return {
    cron: spec.cron,
    input,
    backfill: spec.backfill === true,
    priority,
    next: (after) => cron.nextRun(after),
  };
}

export function isTaskType(value: unknown): value is TaskType {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TaskType).name === 'string' &&
    typeof (value as TaskType).run === 'function' &&
    typeof (value as TaskType).validate === 'function'
  );
}

/** The set of task types a server runs. */
export class TaskTypes {
  readonly #types = new Map<string, TaskType>();

  register(type: TaskType): this {
    if (this.#types.has(type.name)) throw new Error(`task type ${type.name} is registered twice`);
    this.#types.set(type.name, type);
    return this;
  }

  get(name: string): TaskType | undefined {
    return this.#types.get(name);
  }

  names(): string[] {
    return [...this.#types.keys()];
  }

  all(): TaskType[] {
    return [...this.#types.values()];
  }

  /** The per-type caps of running tasks, for the types that have one. */
  caps(): Record<string, number> {
    const caps: Record<string, number> = {};
    for (const t of this.#types.values()) if (t.concurrency !== undefined) caps[t.name] = t.concurrency;
    return caps;
  }
}
