// API docs: @fastify/swagger builds the OpenAPI document from the routes as they register (their
// body and params schemas), and this file adds what api.md says about each one (summary,
// query, responses, auth) for the docs only: validation and serialization stay the routes' own.
// Served at /docs (swagger-ui) and /docs/json.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import Type, { type TSchema } from 'typebox';
import {
  AuditEventSchema,
  ErrorBodySchema,
  StatsSchema,
  TaskSchema,
  TaskStatusSchema,
} from '../contract/index.ts';
import { ERROR_STATUS, type ErrorCode } from './errors.ts';

export const DOCS_PREFIX = '/docs';

const Status = TaskStatusSchema;
const Task = TaskSchema;
const AuditEvent = AuditEventSchema;
const ErrorBody = ErrorBodySchema;

const Health = Type.Object({ status: Type.String(), reason: Type.Optional(Type.String()) });

function ok(description: string, schema: TSchema): Record<string, unknown> {
  return { ...schema, description };
}

function errors(...codes: ErrorCode[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const code of codes) out[ERROR_STATUS[code]] = { description: code, ...ErrorBody };
  return out;
}

const AUTHED = ['unauthorized', 'unavailable'] as const;

/** api.md's words on each route, keyed `METHOD url` as Fastify registers them. */
const ROUTES: Record<string, FastifySchema & Record<string, unknown>> = {
  'POST /api/tasks': {
    tags: ['tasks'],
    summary: 'Create a task and enqueue its job',
    description:
      '`type` picks the task type (default: the server default, `demo`); every other top-level field is the ' +
      "task's `input`. Reserved options: `max_attempts` (1..25), `priority` (-100..100, default 0; higher " +
      'runs sooner), `run_at` (ISO 8601 with a zone: do not start before; in the past: now) or `delay_ms` ' +
      '(0..2,678,400,000; not both; at most `TASKWIRE_MAX_DELAY_MS` ahead). A repeated `Idempotency-Key` ' +
      'from the same user returns the first task with 200 instead of creating another.',
    headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }),
    response: {
      201: ok('created', Task),
      200: ok('an earlier task with the same Idempotency-Key', Task),
      ...errors(
        'bad_request',
        'payload_too_large',
        'unsupported_media_type',
        'validation_failed',
        'rate_limited',
        ...AUTHED,
      ),
    },
  },
  'GET /api/tasks': {
    tags: ['tasks'],
    summary: "The caller's tasks, newest first",
    description:
      "An admin token may add `owner` (another user's tasks) or `all=true` (every user's, each task with " +
      'its `owner`); other tokens get 403 forbidden for them.',
    querystring: Type.Object({
      owner: Type.Optional(Type.String({ description: "another user's tasks (admin)" })),
      all: Type.Optional(Type.Boolean({ description: "every user's tasks (admin)" })),
      status: Type.Optional(Status),
      type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
      cursor: Type.Optional(Type.String({ description: '`next_cursor` of the previous page' })),
    }),
    response: {
      200: ok(
        'a page',
        Type.Object({ tasks: Type.Array(Task), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
      ),
      ...errors('validation_failed', 'forbidden', ...AUTHED),
    },
  },
  'GET /api/stats': {
    tags: ['tasks'],
    summary: 'How the system is doing: counts, throughput, run times, queue, sockets, nodes',
    description:
      '`queued` and `running` count the tasks in flight now; `completed`, `failed` and `cancelled` those ' +
      "finished within `window` (default `1h`). The caller's own tasks, or every user's with `all=true` " +
      '(admin tokens only; others get 403).',
    querystring: Type.Object({
      window: Type.Optional(Type.String({ default: '1h', description: '1m..31d: an integer and m, h or d' })),
      all: Type.Optional(Type.Boolean({ description: "every user's tasks (admin)" })),
    }),
    response: { 200: ok('the figures', StatsSchema), ...errors('validation_failed', 'forbidden', ...AUTHED) },
  },
  'GET /api/tasks/:id': {
    tags: ['tasks'],
    summary: 'Current state (from the live actor when there is one, else the database)',
    description:
      'For a queued task the `Taskwire-Wait` header says why it has not started: `scheduled` (its ' +
      '`scheduled_at` has not come), `user_limit` (its owner has TASKWIRE_USER_CONCURRENCY tasks running), ' +
      "`type_limit` (its type's `concurrency` is full), `turn` (waiting for a free worker and its turn).",
    response: {
      200: {
        ...ok('the task', Task),
        headers: {
          'taskwire-wait': {
            description: 'queued tasks only: scheduled | user_limit | type_limit | turn',
            schema: { type: 'string', enum: ['scheduled', 'user_limit', 'type_limit', 'turn'] },
          },
        },
      },
      ...errors('not_found', ...AUTHED),
    },
  },
  'POST /api/tasks/:id/cancel': {
    tags: ['tasks'],
    summary: 'Cancel a queued or running task',
    description: 'A running handler stops at its next check of its signal; the `cancelled` event follows.',
    response: {
      202: ok('cancel accepted', Task),
      ...errors('not_found', ...AUTHED),
      409: { description: 'conflict: already terminal (the body carries `task`)', ...ErrorBody },
    },
  },
  'POST /api/tasks/:id/retry': {
    tags: ['tasks'],
    summary: 'Start a new series of attempts of a failed or cancelled task',
    description:
      'The task is queued again: `attempt` keeps rising (the next run is `attempt + 1`), and the budget is ' +
      'fresh (`max_attempts` becomes `attempt` + the budget it was created with). Audited and published as ' +
      '`retried`.',
    response: {
      202: ok('queued again', Task),
      ...errors('not_found', ...AUTHED),
      409: { description: 'conflict: not failed or cancelled (the body carries `task`)', ...ErrorBody },
    },
  },
  'GET /api/tasks/:id/events': {
    tags: ['tasks'],
    summary: "The task's audit trail, oldest first",
    response: {
      200: ok('the trail', Type.Object({ events: Type.Array(AuditEvent) })),
      ...errors('not_found', ...AUTHED),
    },
  },
  'GET /api/tasks/:id/output': {
    tags: ['tasks'],
    summary: "The task's streamed output: Server-Sent Events, or all of it with ?format=json",
    description:
      'SSE: each chunk is `id: <index>`, `event: output`, `data: {"index","data","attempt"}`; a new attempt ' +
      'starting over is `event: output_reset` (`{"attempt","start"}`); after the terminal state, `event: end` ' +
      'with the task, and the stream closes. Starts at `output.start`, after chunk n with `Last-Event-ID: n`, ' +
      'or at chunk n with `?from=n`. A browser EventSource may pass the token as `?token=`.',
    querystring: Type.Object({
      format: Type.Optional(Type.Union([Type.Literal('sse'), Type.Literal('json')])),
      from: Type.Optional(Type.Integer({ minimum: 0 })),
      token: Type.Optional(Type.String({ description: 'the bearer token, for EventSource (no headers)' })),
    }),
    response: {
      200: {
        description: 'text/event-stream, or with ?format=json the whole valid output',
        content: {
          'text/event-stream': { schema: { type: 'string' } },
          'application/json': {
            schema: Type.Object({
              output: Type.Array(
                Type.Object({ index: Type.Integer(), data: Type.Unknown(), attempt: Type.Integer() }),
              ),
              start: Type.Integer(),
              next: Type.Integer(),
              done: Type.Boolean(),
            }),
          },
        },
      },
      ...errors('not_found', 'validation_failed', ...AUTHED),
    },
  },
  'GET /healthz': {
    tags: ['operations'],
    summary: 'The process is alive',
    response: { 200: ok('alive', Health) },
  },
  'GET /readyz': {
    tags: ['operations'],
    summary: 'It can serve: database reachable, workers running',
    response: { 200: ok('ready', Health), 503: ok('not ready, and why', Health) },
  },
  'GET /metrics': {
    tags: ['operations'],
    summary: 'Prometheus text format (see the README for every metric)',
    response: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
  },
  'GET /socket/longpoll': {
    tags: ['socket'],
    summary: 'Phoenix Channels LongPoll transport (poll)',
    description:
      'Driven by Phoenix clients (`phoenix` on npm with LongPoll, SwiftPhoenixClient); see api.md.',
  },
  'POST /socket/longpoll': {
    tags: ['socket'],
    summary: 'Phoenix Channels LongPoll transport (send)',
  },
  'OPTIONS /socket/longpoll': { hide: true },
  'GET /dashboard': { hide: true },
  'HEAD /dashboard': { hide: true },
  'GET /dashboard/*': { hide: true },
  'HEAD /dashboard/*': { hide: true },
};

const DESCRIPTION = `Long-running tasks with live progress.

**Live progress** goes over the Phoenix Channels protocol (not described by OpenAPI): WebSocket
\`/socket/websocket\` (LongPoll \`/socket/longpoll\`) with connect param \`token\`, topic
\`task:<task_id>\`, join reply \`{"task": <task>}\`, events \`started\`, \`progress\`, \`retrying\`,
\`completed\`, \`failed\`, \`cancelled\`, \`retried\` with payload \`{task_id, status, progress, message, seq,
attempt, at}\`. The \`taskwire/client\` SDK and \`npx taskwire\` CLI speak it for you.

Errors are always \`{"error": {"code", "message", ...details}}\`, on every path: an unknown path is
404 \`not_found\`, another method on a served path 405 \`method_not_allowed\` (with \`Allow\`), and a
request HTTP parsing refuses 400 \`bad_request\`, 408 \`request_timeout\` or 431 \`header_too_large\`.
Input PostgreSQL can't store (NUL, a lone UTF-16 surrogate, JSON nested past 512 levels) is 422
\`validation_failed\` naming the field.`;

/** Registers the OpenAPI generator and the /docs UI; call before the routes are registered. */
export function registerApiDocs(app: FastifyInstance, opts: { version?: string } = {}): void {
  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'taskwire', version: opts.version ?? '0.1.0', description: DESCRIPTION },
      tags: [
        { name: 'tasks', description: 'create, read, list, cancel; a bearer token is required' },
        { name: 'operations', description: 'health and metrics; no token' },
        { name: 'socket', description: 'the Phoenix Channels LongPoll transport' },
      ],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (HS256, sub = user id)' },
        },
      },
    },
    transform({ schema, url, route }) {
      const docs = ROUTES[Array.isArray(route.method) ? `* ${url}` : `${route.method} ${url}`];
      if (!docs) return { schema, url };
      const merged: FastifySchema & Record<string, unknown> = { ...docs, ...schema };
      if (url.startsWith('/api/')) merged.security = [{ bearer: [] }];
      return { schema: merged, url };
    },
  });
  app.register(swaggerUi, { routePrefix: DOCS_PREFIX });
}
