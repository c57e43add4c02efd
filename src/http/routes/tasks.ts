// The task routes of api.md: create, get, list (keyset cursor), cancel, retry, audit trail. A GET
// of a queued task says why it waits in the `Taskwire-Wait` header (the Task's fields are api.md's).
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import {
  MAX_DELAY_MS,
  PRIORITY_MAX,
  PRIORITY_MIN,
  TASK_STATUSES,
  type TaskStatus,
} from '../../contract/index.ts';
import {
  escapeUnstorable,
  findUnstorable,
  isStorableString,
  MAX_JSON_DEPTH,
} from '../../contract/storable.ts';
import type { TaskService } from '../../tasks/index.ts';
import { bearerAuth, requireAdmin, viewer } from '../auth-hook.ts';
import { type FieldDetail, HttpError, validationFailed } from '../errors.ts';
import type { RateLimiter } from '../rate-limit.ts';

export interface TaskRoutesOptions {
  service: TaskService;
  tokens: Parameters<typeof bearerAuth>[0];
  createLimiter: RateLimiter;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATUSES = TASK_STATUSES;

const CreateBody = Type.Object(
  {
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    max_attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 25 })),
    priority: Type.Optional(
      Type.Integer({
        minimum: PRIORITY_MIN,
        maximum: PRIORITY_MAX,
        description: 'higher runs sooner (default 0)',
      }),
    ),
    run_at: Type.Optional(
      Type.String({
        format: 'date-time',
        description:
          'do not start before this ISO 8601 time (with a zone); in the past: now. At most TASKWIRE_MAX_DELAY_MS ahead',
      }),
    ),
    delay_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_DELAY_MS,
        description: 'do not start for this many milliseconds (not with run_at)',
      }),
    ),
  },
  { additionalProperties: true },
);

/** The header on a GET of a queued task that says why it waits. */
export const WAIT_HEADER = 'taskwire-wait';

const IdParams = Type.Object({ id: Type.String() });

/** An opaque cursor: the id of the page's last task. */
export function encodeCursor(id: string): string {
  return Buffer.from(JSON.stringify([id])).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(parsed) &&
      parsed.length === 1 &&
      typeof parsed[0] === 'string' &&
      UUID.test(parsed[0])
    ) {
      return parsed[0];
    }
  } catch {
    // falls through to the error below
  }
  throw validationFailed([{ field: 'cursor', message: 'is not a cursor this server issued' }]);
}

/** A request's Content-Length, when it has one (a chunked body has none). */
function bodyBytes(header: string | undefined): number | undefined {
  const n = header === undefined ? Number.NaN : Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function single(value: unknown): string | undefined {
  return Array.isArray(value)
    ? String(value[value.length - 1])
    : typeof value === 'string'
      ? value
      : undefined;
}

const UNSTORABLE = 'contains NUL (\\u0000) or a lone UTF-16 surrogate, which PostgreSQL cannot store';

/**
 * The first string of a request body that PostgreSQL can't store, as a field detail: its path
 * from the body's top level (`a.b.0`), with the offending characters shown as escapes.
 */
export function unstorableField(body: unknown): FieldDetail | undefined {
  const place = findUnstorable(body);
  if (!place) return undefined;
  const path = place.path.map((p) => escapeUnstorable(String(p)));
  if (place.in === 'depth') {
    return { field: path[0] ?? 'body', message: `nests deeper than ${MAX_JSON_DEPTH} levels` };
  }
  return {
    field: path.join('.') || 'body',
    message: place.in === 'key' ? `is a key that ${UNSTORABLE}` : UNSTORABLE,
  };
}

function parseListQuery(query: Record<string, unknown>) {
  const fields: { field: string; message: string }[] = [];
  const owner = single(query.owner);
  if (owner !== undefined && (owner.length === 0 || owner.length > 200))
    fields.push({ field: 'owner', message: 'must be 1..200 characters' });
  const all = single(query.all);
  if (all !== undefined && all !== 'true' && all !== 'false')
    fields.push({ field: 'all', message: 'must be true or false' });
  const status = single(query.status);
  if (status !== undefined && !STATUSES.includes(status as TaskStatus)) {
    fields.push({ field: 'status', message: `must be one of ${STATUSES.join(', ')}` });
  }
  const type = single(query.type);
  if (type !== undefined && (type.length === 0 || type.length > 64))
    fields.push({ field: 'type', message: 'must be 1..64 characters' });
  else if (type !== undefined && !isStorableString(type)) fields.push({ field: 'type', message: UNSTORABLE });
  const rawLimit = single(query.limit);
  const limit = rawLimit === undefined ? 20 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100)
    fields.push({ field: 'limit', message: 'must be an integer in 1..100' });
  if (fields.length) throw validationFailed(fields);
  const cursor = single(query.cursor);
  return {
    owner,
    all: all === 'true',
    status: status as TaskStatus | undefined,
    type,
    limit,
    afterId: cursor ? decodeCursor(cursor) : undefined,
  };
}

function taskId(id: string): string {
  if (!UUID.test(id)) throw new HttpError('not_found', 'no such task');
  return id.toLowerCase();
}

export const taskRoutes: FastifyPluginAsync<TaskRoutesOptions> = async (app, opts) => {
  const { service } = opts;
  // Bodies are JSON only: without this, Fastify's built-in text/plain parser hands a string to
  // the body schema and the client gets a puzzling 422 "body must be object" instead of a 415.
  app.removeContentTypeParser('text/plain');
  app.addHook('onRequest', bearerAuth(opts.tokens));

  app.post('/api/tasks', { schema: { body: CreateBody } }, async (request, reply) => {
    const body = request.body as Record<string, unknown>;
    const idempotencyKey = request.headers['idempotency-key'];
    if (
      idempotencyKey !== undefined &&
      (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0 || idempotencyKey.length > 255)
    ) {
      throw validationFailed([{ field: 'Idempotency-Key', message: 'must be 1..255 characters' }]);
    }
    // Rejected, not repaired: a client's own input is stored exactly as sent, or not at all.
    if (idempotencyKey !== undefined && !isStorableString(idempotencyKey)) {
      throw validationFailed([{ field: 'Idempotency-Key', message: UNSTORABLE }]);
    }
    const unstorable = unstorableField(body);
    if (unstorable) throw validationFailed([unstorable]);
    const wait = opts.createLimiter.hit(request.userId);
    if (wait > 0) {
      throw new HttpError('rate_limited', 'too many tasks created; slow down', { retry_after_ms: wait });
    }
    const { type, max_attempts, priority, run_at, delay_ms, ...input } = body;
    const { task, created } = await service.create({
      owner: request.userId,
      type: type as string | undefined,
      maxAttempts: max_attempts as number | undefined,
      priority,
      runAt: run_at,
      delayMs: delay_ms,
      input,
      idempotencyKey,
      bodyBytes: bodyBytes(request.headers['content-length']),
    });
    reply.code(created ? 201 : 200);
    return task;
  });

  app.get('/api/tasks', async (request) => {
    const { owner, all, ...q } = parseListQuery(request.query as Record<string, unknown>);
    // Another user's tasks (`?owner=`) or everyone's (`?all=true`, each with `owner`): admins only.
    if (all) requireAdmin(request, 'all=true');
    else if (owner !== undefined && owner !== request.userId) requireAdmin(request, "another user's tasks");
    const { tasks, more } = await service.list({ owner: all ? undefined : (owner ?? request.userId), ...q });
    const last = tasks[tasks.length - 1];
    return { tasks, next_cursor: more && last ? encodeCursor(last.task_id) : null };
  });

  app.get('/api/tasks/:id', { schema: { params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const task = await service.get(viewer(request), taskId(id));
    if (!task) throw new HttpError('not_found', 'no such task');
    const wait = await service.waitReason(task);
    if (wait) reply.header(WAIT_HEADER, wait);
    return task;
  });

  app.post('/api/tasks/:id/cancel', { schema: { params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const result = await service.cancel(viewer(request), taskId(id));
    if (result.kind === 'not_found') throw new HttpError('not_found', 'no such task');
    if (result.kind === 'conflict') {
      throw new HttpError('conflict', `the task is already ${result.task.status}`, { task: result.task });
    }
    reply.code(202);
    return result.task;
  });

  app.post('/api/tasks/:id/retry', { schema: { params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const result = await service.retry(request.userId, taskId(id));
    if (result.kind === 'not_found') throw new HttpError('not_found', 'no such task');
    if (result.kind === 'conflict') {
      throw new HttpError(
        'conflict',
        `only a failed or cancelled task can be retried; this one is ${result.task.status}`,
        { task: result.task },
      );
    }
    reply.code(202);
    return result.task;
  });

  app.get('/api/tasks/:id/events', { schema: { params: IdParams } }, async (request) => {
    const { id } = request.params as { id: string };
    const events = await service.events(viewer(request), taskId(id));
    if (!events) throw new HttpError('not_found', 'no such task');
    return { events };
  });
};
