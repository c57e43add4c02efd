// The comparison peer: the same flow built the way a Node team would without taskwire.
// HTTP (Fastify) POST enqueues a BullMQ job; a BullMQ worker runs the demo loop and reports each
// step with `job.updateProgress`; QueueEvents relays active/progress/completed to a Socket.IO room
// per task; a client joins the room of a task (ownership checked, current state in the ack). One
// process, like taskwire. BullMQ 6 runs on either of its backends: PEER_BACKEND=redis (REDIS_URL,
// PEER_PREFIX) or PEER_BACKEND=postgres (DATABASE_URL, a database of its own; BullMQ creates its
// schema there). Environment: PORT, HOST, PEER_SECRET, PEER_CONCURRENCY, PEER_QUEUE,
// PEER_PG_POOL_SIZE, LOG_LEVEL. Event payloads mirror taskwire's (task_id, status, progress,
// message, seq, attempt, at). It must not do anything BullMQ does not do for a user: no queue code
// of its own.
import {
  type BackendClasses,
  createPostgresBackend,
  createRedisBackend,
  type IQueueBackend,
  withBackend,
} from 'bullmq';
import Fastify from 'fastify';
import { jwtVerify } from 'jose';
import pino from 'pino';
import { Server } from 'socket.io';
import { v7 as uuidv7 } from 'uuid';

const env = process.env;
const port = Number(env.PORT ?? 4100);
const host = env.HOST ?? '127.0.0.1';
const secret = new TextEncoder().encode(env.PEER_SECRET ?? 'change-me-please-0123456789');
const concurrency = Number(env.PEER_CONCURRENCY ?? 100);
const queueName = env.PEER_QUEUE ?? 'tasks';
const backendName = env.PEER_BACKEND ?? 'redis';
const log = pino({ level: env.LOG_LEVEL ?? 'warn' }, pino.destination(2));

interface DemoInput {
  steps?: number;
  interval_ms?: number;
  start_at?: number;
}
interface JobData {
  owner: string;
  input: DemoInput;
}
interface JobResult {
  steps: number;
}

/** What differs between the two backends, besides the classes. */
interface Store {
  /** Redis only: the key prefix of this run's queue. */
  prefix?: string;
  /** When an event happened, from its event id (Redis: the stream entry's time), else now. */
  eventTime(id: string): number;
  /** Remove the queue's data at shutdown (Redis; PostgreSQL runs get a database that is dropped). */
  obliterate: boolean;
  describe: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const room = (taskId: string) => `task:${taskId}`;

async function userOf(token: unknown): Promise<string | undefined> {
  if (typeof token !== 'string' || !token) return undefined;
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
    return typeof payload.sub === 'string' && payload.sub ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

const STATUS: Record<string, string> = {
  waiting: 'queued',
  delayed: 'queued',
  prioritized: 'queued',
  'waiting-children': 'queued',
  active: 'running',
  completed: 'completed',
  failed: 'failed',
};

async function serve<B extends IQueueBackend, C>(
  bull: BackendClasses<B, C>,
  connection: C,
  store: Store,
): Promise<void> {
  const { prefix } = store;
  // ---- the queue and its worker (the demo loop) ----

  const queue = new bull.Queue<JobData>(queueName, { connection, prefix });
  let workerCompleted = 0;
  const worker = new bull.Worker<JobData, JobResult>(
    queueName,
    async (job) => {
      const steps = job.data.input.steps ?? 5;
      const interval = job.data.input.interval_ms ?? 2000;
      const wait = (job.data.input.start_at ?? 0) - Date.now();
      if (wait > 0) await sleep(wait);
      for (let i = 1; i <= steps; i++) {
        if (interval > 0) await sleep(interval);
        else if (i % 256 === 0) await new Promise((r) => setImmediate(r));
        await job.updateProgress({
          task_id: job.id,
          status: 'running',
          progress: i / steps,
          message: null,
          seq: i + 1,
          attempt: job.attemptsMade + 1,
          at: Date.now(),
        });
      }
      return { steps };
    },
    { connection, prefix, concurrency },
  );
  worker.on('error', (err) => log.error({ err }, 'worker error'));
  worker.on('completed', () => {
    workerCompleted += 1;
  });
  const queueEvents = new bull.QueueEvents(queueName, { connection, prefix });
  queueEvents.on('error', (err) => log.error({ err }, 'queue events error'));
  let relayedCompleted = 0;

  // ---- HTTP ----

  const app = Fastify({ logger: false, bodyLimit: 1_048_576 });
  const io = new Server(app.server, { serveClient: false, perMessageDeflate: false });

  app.post(
    '/api/tasks',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            type: { type: 'string' },
            steps: { type: 'integer', minimum: 1, maximum: 100_000 },
            interval_ms: { type: 'integer', minimum: 0, maximum: 600_000 },
            start_at: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
    async (req, reply) => {
      const owner = await userOf(req.headers.authorization?.replace(/^Bearer /, ''));
      if (!owner) return reply.code(401).send({ error: { code: 'unauthorized', message: 'bad token' } });
      const { type: _type, ...input } = req.body as DemoInput & { type?: string };
      const id = uuidv7();
      await queue.add(
        'demo',
        { owner, input },
        {
          jobId: id,
          attempts: 3,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: { age: 3600 },
          removeOnFail: { age: 3600 },
        },
      );
      const now = new Date().toISOString();
      return reply.code(201).send({
        task_id: id,
        type: 'demo',
        status: 'queued',
        progress: 0,
        message: null,
        input,
        attempt: 0,
        seq: 0,
        inserted_at: now,
        updated_at: now,
      });
    },
  );

  app.get('/readyz', async (_req, reply) => {
    const ok =
      worker.isRunning() &&
      (await queue.getJobCountByTypes('active').then(
        () => true,
        () => false,
      ));
    return reply.code(ok ? 200 : 503).send({ ok });
  });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/bench/stats', async () => ({
    sockets: io.engine.clientsCount,
    // Completions the worker saw, and those QueueEvents delivered (and so clients could see).
    workerCompleted,
    relayedCompleted,
    jobCounts: await queue.getJobCounts('active', 'waiting', 'completed', 'failed'),
  }));

  // ---- Socket.IO: one room per task ----

  io.use(async (socket, next) => {
    const user = await userOf(socket.handshake.auth?.token ?? socket.handshake.query?.token);
    if (!user) return next(new Error('unauthorized'));
    socket.data.user = user;
    next();
  });

  io.on('connection', (socket) => {
    socket.on('join', async (taskId: unknown, ack?: (reply: unknown) => void) => {
      const respond = typeof ack === 'function' ? ack : () => {};
      if (typeof taskId !== 'string') return respond({ ok: false, reason: 'bad task id' });
      try {
        const job = await queue.getJob(taskId);
        if (!job || job.data.owner !== socket.data.user)
          return respond({ ok: false, reason: 'unauthorized' });
        socket.join(room(taskId));
        const state = await job.getState();
        const status = STATUS[state] ?? state;
        const progress =
          typeof job.progress === 'object' ? (job.progress as { seq?: number; progress?: number }) : {};
        const seq =
          status === 'completed'
            ? (job.returnvalue?.steps ?? 0) + 2
            : status === 'running'
              ? (progress.seq ?? 1)
              : 0;
        respond({
          ok: true,
          task: {
            task_id: taskId,
            status,
            progress: progress.progress ?? 0,
            seq,
            result: job.returnvalue ?? null,
          },
        });
      } catch (err) {
        respond({ ok: false, reason: (err as Error).message });
      }
    });
    socket.on('leave', (taskId: unknown) => {
      if (typeof taskId === 'string') socket.leave(room(taskId));
    });
  });

  // ---- QueueEvents -> rooms ----

  queueEvents.on('active', ({ jobId }, id) => {
    io.to(room(jobId)).emit('started', {
      task_id: jobId,
      status: 'running',
      progress: 0,
      message: null,
      seq: 1,
      attempt: 1,
      at: store.eventTime(id),
    });
  });
  queueEvents.on('progress', ({ jobId, data }) => {
    io.to(room(jobId)).emit('progress', data);
  });
  queueEvents.on('completed', ({ jobId, returnvalue }, id) => {
    relayedCompleted += 1;
    const result = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as {
      steps?: number;
    };
    io.to(room(jobId)).emit('completed', {
      task_id: jobId,
      status: 'completed',
      progress: 1,
      message: null,
      seq: (result?.steps ?? 0) + 2,
      attempt: 1,
      at: store.eventTime(id),
      result,
    });
  });
  queueEvents.on('failed', ({ jobId, failedReason }, id) => {
    io.to(room(jobId)).emit('failed', {
      task_id: jobId,
      status: 'failed',
      message: null,
      seq: -1,
      at: store.eventTime(id),
      error: { message: failedReason },
    });
  });

  await queueEvents.waitUntilReady();
  await worker.waitUntilReady();
  await app.listen({ port, host });
  const bound = (app.server.address() as { port: number }).port; // PORT=0: the port it got
  // The runner waits for this line on stdout (pino logs go to stderr at LOG_LEVEL).
  process.stdout.write(
    `peer listening on http://${host}:${bound} (${store.describe}, queue ${queueName}, concurrency ${concurrency})\n`,
  );

  let stopping = false;
  async function stop() {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled([worker.close(true), queueEvents.close()]);
    io.close();
    await app.close().catch(() => {});
    if (store.obliterate && env.PEER_OBLITERATE !== '0')
      await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    process.exit(0);
  }
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

if (backendName === 'postgres') {
  if (!env.DATABASE_URL) throw new Error('PEER_BACKEND=postgres needs DATABASE_URL');
  await serve(
    withBackend(createPostgresBackend),
    // `migrate`: create BullMQ's schema in the run's fresh database (an advisory lock serialises
    // the three instances' migrations).
    { connectionString: env.DATABASE_URL, max: Number(env.PEER_PG_POOL_SIZE ?? 10), migrate: true },
    {
      // The PostgreSQL backend's event ids are a sequence, and QueueEvents does not pass on the
      // row's created_at_ms: the time is when the event reached this process.
      eventTime: () => Date.now(),
      obliterate: false,
      describe: 'BullMQ on PostgreSQL',
    },
  );
} else if (backendName === 'redis') {
  const redisUrl = new URL(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const prefix = env.PEER_PREFIX ?? 'bull';
  await serve(
    withBackend(createRedisBackend),
    { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), maxRetriesPerRequest: null },
    {
      prefix,
      // A Redis stream entry id starts with the server's time in ms: when the event happened.
      eventTime: (id) => Number(id.slice(0, id.indexOf('-'))) || Date.now(),
      obliterate: true,
      describe: `BullMQ on Redis, prefix ${prefix}`,
    },
  );
} else {
  throw new Error(`PEER_BACKEND must be postgres or redis, got ${backendName}`);
}
