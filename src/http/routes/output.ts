// GET /api/tasks/:id/output (api.md "Streamed output"): the task's output as Server-Sent Events
// for clients that don't speak Phoenix (curl, an AI SDK's text stream, Python), resumable by
// `Last-Event-ID` or `?from=`, ending after the terminal state; `?format=json` for all of it at once.
// The stream subscribes first and reads after, like a channel join, so no chunk falls between.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TopicEvent, TopicSubscriber } from '../../bus/index.ts';
import { JoinGate } from '../../channels/join-gate.ts';
import { isTaskId, isTerminal, type Task, taskTopic } from '../../contract/index.ts';
import type { TaskService } from '../../tasks/index.ts';
import { bearerAuth } from '../auth-hook.ts';
import { HttpError, validationFailed } from '../errors.ts';

export interface OutputRoutesOptions {
  service: TaskService;
  tokens: Parameters<typeof bearerAuth>[0];
  /** A reader whose unread bytes pass this is cut off (it resumes with Last-Event-ID). */
  maxBufferedBytes: number;
}

/** Comment lines keep proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;
const TERMINAL_EVENTS = new Set(['completed', 'failed', 'cancelled']);

function index(value: unknown, field: string): number | undefined {
  const raw = Array.isArray(value) ? value[value.length - 1] : value;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw validationFailed([{ field, message: 'must be an integer >= 0' }]);
  return n;
}

export const outputRoutes: FastifyPluginAsync<OutputRoutesOptions> = async (app, opts) => {
  const { service } = opts;
  // EventSource can't send headers: a browser may pass the token as ?token= (redacted from logs).
  app.addHook('onRequest', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    if (!request.headers.authorization && typeof query.token === 'string')
      request.headers.authorization = `Bearer ${query.token}`;
    return bearerAuth(opts.tokens)(request, reply);
  });

  app.get('/api/tasks/:id/output', async (request, reply) => {
    const { id: raw } = request.params as { id: string };
    const id = raw.toLowerCase();
    if (!isTaskId(id)) throw new HttpError('not_found', 'no such task');
    const query = request.query as Record<string, unknown>;
    if (query.format !== undefined && query.format !== 'json' && query.format !== 'sse')
      throw validationFailed([{ field: 'format', message: 'must be json or sse' }]);
    if (query.format === 'json') {
      const task = await service.get(request.userId, id);
      if (!task) throw new HttpError('not_found', 'no such task');
      const output = [];
      for await (const page of service.outputPages(id, task.output.start, task.output.next))
        output.push(...page);
      return { output, start: task.output.start, next: task.output.next, done: isTerminal(task.status) };
    }
    const lastEventId = index(request.headers['last-event-id'], 'Last-Event-ID');
    const from = lastEventId !== undefined ? lastEventId + 1 : index(query.from, 'from');
    return stream(request, reply, service, id, from, opts.maxBufferedBytes);
  });
};

async function stream(
  request: FastifyRequest,
  reply: FastifyReply,
  service: TaskService,
  id: string,
  fromAsked: number | undefined,
  maxBuffered: number,
): Promise<void> {
  const topic = taskTopic(id);
  const gate = new JoinGate();
  let live: ((event: TopicEvent) => void) | undefined;
  let closed = false;
  const sub: TopicSubscriber = {
    deliver: (event) => {
      if (gate.admit(event)) live?.(event);
    },
    lost: () => end(), // the feed broke: the client reconnects with Last-Event-ID
  };
  const joined = await service.joinTask(request.userId, id, sub);
  if (!joined.ok) {
    if (joined.reason === 'unavailable')
      throw new HttpError('unavailable', 'the bus is unavailable; try again shortly');
    throw new HttpError('not_found', 'no such task');
  }
  const task = joined.state;
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-store',
    'x-accel-buffering': 'no',
  });
  const keepalive = setInterval(() => write(': keep-alive\n\n'), KEEPALIVE_MS);
  keepalive.unref();
  function end(): void {
    if (closed) return;
    closed = true;
    clearInterval(keepalive);
    service.leave(topic, sub);
    res.end();
  }
  res.on('close', end);
  /** Writes a frame; false once the reader is gone or too far behind (then the stream ends). */
  function write(frame: string): boolean {
    if (closed) return false;
    if (res.writableLength > maxBuffered) {
      end();
      return false;
    }
    res.write(frame);
    return true;
  }
  const drained = () =>
    res.writableNeedDrain && !closed ? new Promise((r) => res.once('drain', r)) : undefined;
  const chunk = (index: number, data: unknown, attempt: number) =>
    write(`id: ${index}\nevent: output\ndata: ${JSON.stringify({ index, data, attempt })}\n\n`);

  let next = Math.max(fromAsked ?? task.output.start, task.output.start);
  try {
    for await (const page of service.outputPages(id, next, task.output.next)) {
      for (const c of page) if (!chunk(c.index, c.data, c.attempt)) return;
      next = page[page.length - 1].index + 1;
      await drained();
    }
  } catch (err) {
    request.log.warn({ err, task_id: id }, 'output backlog failed; the client resumes');
    end();
    return;
  }
  next = Math.max(next, task.output.next);
  let start = task.output.start;
  const finish = async () => {
    // The terminal state as stored, after its output (api.md: `end` with the task).
    const final: Task | null = await service.get(request.userId, id).catch(() => null);
    write(`event: end\ndata: ${JSON.stringify(final ?? task)}\n\n`);
    end();
  };
  if (isTerminal(task.status)) return finish();
  live = (event) => {
    if (event.name === 'output') {
      const p = event.payload as { index: number; data: unknown; attempt: number };
      if (p.index < next) return;
      if (p.index > next) return end(); // a chunk went missing: the client resumes with Last-Event-ID
      next = p.index + 1;
      chunk(p.index, p.data, p.attempt);
    } else if (event.name === 'output_reset') {
      const p = event.payload as { attempt: number; start: number };
      if (p.start <= start) return;
      start = p.start;
      next = Math.max(next, p.start);
      write(`event: output_reset\ndata: ${JSON.stringify({ attempt: p.attempt, start: p.start })}\n\n`);
    } else if (TERMINAL_EVENTS.has(event.name)) {
      void finish();
    }
  };
  for (const event of gate.open([{ key: id, seq: task.seq }])) live(event);
}
