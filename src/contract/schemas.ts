// JSON schemas (typebox) of the public shapes, for route validation, serialization and the OpenAPI
// document. They describe the types in task.ts, events.ts and errors.ts; a test keeps the Task
// schema's fields equal to api.md's.
import Type from 'typebox';
import { ERROR_STATUS } from './errors.ts';
import { TASK_STATUSES } from './task.ts';

export const TaskStatusSchema = Type.Union(TASK_STATUSES.map((s) => Type.Literal(s)));

export const TaskSchema = Type.Object(
  {
    task_id: Type.String({ format: 'uuid', description: 'UUIDv7 (time-ordered)' }),
    type: Type.String(),
    status: TaskStatusSchema,
    progress: Type.Number({ minimum: 0, maximum: 1, description: 'never decreasing within one attempt' }),
    message: Type.Union([Type.String(), Type.Null()], {
      description: 'optional human text from the handler',
    }),
    input: Type.Object({}, { additionalProperties: true }),
    result: Type.Unknown({ description: 'set when completed' }),
    error: Type.Union(
      [Type.Object({ message: Type.String() }, { additionalProperties: true }), Type.Null()],
      {
        description: 'set when failed',
      },
    ),
    attempt: Type.Integer({ description: '1 on first run, grows on retry' }),
    max_attempts: Type.Integer(),
    priority: Type.Integer({ minimum: -100, maximum: 100, description: 'higher runs sooner' }),
    scheduled_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'when a delayed task may start (null: at once)',
    }),
    node: Type.Union([Type.String(), Type.Null()], {
      description: 'the node running the attempt, else null',
    }),
    output: Type.Object(
      { start: Type.Integer({ minimum: 0 }), next: Type.Integer({ minimum: 0 }) },
      { description: 'streamed output: first valid index, next index' },
    ),
    seq: Type.Integer({ description: 'per-task event sequence, strictly increasing' }),
    inserted_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { description: 'A task (api.md "Task")' },
);

export const AuditEventSchema = Type.Object({
  id: Type.Integer(),
  seq: Type.Integer(),
  event: Type.String({ description: 'created, started, progress (checkpoints), retrying, completed, ...' }),
  attempt: Type.Integer(),
  data: Type.Object({}, { additionalProperties: true }),
  inserted_at: Type.String({ format: 'date-time' }),
});

export const ErrorBodySchema = Type.Object({
  error: Type.Object(
    {
      code: Type.String({ enum: Object.keys(ERROR_STATUS) }),
      message: Type.String(),
      details: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
    },
    { additionalProperties: true },
  ),
});

const StatusCountsSchema = Type.Object(
  Object.fromEntries(TASK_STATUSES.map((s) => [s, Type.Integer({ minimum: 0 })])),
  { description: 'queued and running: now; completed, failed, cancelled: finished within the window' },
);
const Ms = Type.Union([Type.Number(), Type.Null()]);

/** `GET /api/stats` (stats.ts). */
export const StatsSchema = Type.Object({
  scope: Type.Union([Type.Literal('own'), Type.Literal('all')]),
  window: Type.String(),
  window_seconds: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  counts: StatusCountsSchema,
  types: Type.Array(
    Type.Object({
      type: Type.String(),
      counts: StatusCountsSchema,
      p50_ms: Ms,
      p95_ms: Ms,
    }),
  ),
  throughput: Type.Object({
    bucket_seconds: Type.Integer(),
    buckets: Type.Array(
      Type.Object({
        at: Type.String({ format: 'date-time' }),
        completed: Type.Integer(),
        failed: Type.Integer(),
        cancelled: Type.Integer(),
      }),
    ),
  }),
  queue: Type.Object({
    ready: Type.Integer(),
    scheduled: Type.Integer(),
    oldest_wait_seconds: Type.Number(),
  }),
  sockets: Type.Integer(),
  nodes: Type.Array(
    Type.Object({
      id: Type.String(),
      alive: Type.Boolean(),
      started_at: Type.String({ format: 'date-time' }),
      heartbeat_at: Type.String({ format: 'date-time' }),
      sockets: Type.Integer(),
      running: Type.Integer(),
      concurrency: Type.Integer(),
      types: Type.Array(Type.String()),
    }),
  ),
});
