// The comparison peer: the same flow built the way a Node team would without taskwire.
// HTTP (Fastify) POST enqueues a BullMQ job on Redis; a BullMQ worker runs the demo loop and
// reports each step with `job.updateProgress`; QueueEvents relays active/progress/completed to a
// Socket.IO room per task; a client joins the room of a task (ownership checked, current state
// in the ack). One process, like taskwire. Environment: PORT, HOST, REDIS_URL, PEER_SECRET,
// PEER_CONCURRENCY, PEER_QUEUE, PEER_PREFIX. Event payloads mirror taskwire's
// (task_id, status, progress, message, seq, attempt, at).
import { type Job, Queue, QueueEvents, Worker } from 'bullmq';
import Fastify from 'fastify';
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';
import { v7 as uuidv7 } from 'uuid';

const env = process.env;
const port = Number(env.PORT ?? 4100);
const host = env.HOST ?? '127.0.0.1';
const redisUrl = new URL(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const secret = new TextEncoder().encode(env.PEER_SECRET ?? 'change-me-please-0123456789');
const concurrency = Number(env.PEER_CONCURRENCY ?? 100);
const queueName = env.PEER_QUEUE ?? 'tasks';
const prefix = env.PEER_PREFIX ?? 'bull';

const connection = {
  host: redisUrl.hostname,
  port: Number(redisUrl.port || 6379),
  maxRetriesPerRequest: null,
};

interface DemoInput {
  steps?: number;
  interval_ms?: number;
  start_at?: number;
}
interface JobData {
  owner: string;
  input: DemoInput;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const room = (taskId: string) => `task:${taskId}`;
/** A Redis stream entry id starts with the server's time in ms: when the event happened. */
const streamTime = (id: string) => Number(id.slice(0, id.indexOf('-'))) || Date.now();

async function userOf(token: unknown): Promise<string | undefined> {
  if (typeof token !== 'string' || !token) return undefined;
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
    return typeof payload.sub === 'string' && payload.sub ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

// ---- the queue and its worker (the demo loop) ----

const queue = new Queue<JobData>(queueName, { connection, prefix });
const worker = new Worker<JobData, { steps: number }>(
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
worker.on('error', (err) => console.error('worker error', err));
const queueEvents = new QueueEvents(queueName, { connection, prefix });

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
  jobCounts: await queue.getJobCounts('active', 'waiting', 'completed', 'failed'),
}));

// ---- Socket.IO: one room per task ----

const STATUS: Record<string, string> = {
  waiting: 'queued',
  delayed: 'queued',
  prioritized: 'queued',
  'waiting-children': 'queued',
  active: 'running',
  completed: 'completed',
  failed: 'failed',
};

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
      const job = (await queue.getJob(taskId)) as Job<JobData, { steps: number }> | undefined;
      if (!job || job.data.owner !== socket.data.user) return respond({ ok: false, reason: 'unauthorized' });
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
    at: streamTime(id),
  });
});
queueEvents.on('progress', ({ jobId, data }) => {
  io.to(room(jobId)).emit('progress', data);
});
queueEvents.on('completed', ({ jobId, returnvalue }, id) => {
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
    at: streamTime(id),
    result,
  });
});
queueEvents.on('failed', ({ jobId, failedReason }, id) => {
  io.to(room(jobId)).emit('failed', {
    task_id: jobId,
    status: 'failed',
    message: null,
    seq: -1,
    at: streamTime(id),
    error: { message: failedReason },
  });
});

await queueEvents.waitUntilReady();
await worker.waitUntilReady();
await app.listen({ port, host });
const bound = (app.server.address() as { port: number }).port; // PORT=0: the port it got
console.log(
  `peer listening on http://${host}:${bound} (queue ${prefix}:${queueName}, concurrency ${concurrency})`,
);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled([worker.close(true), queueEvents.close()]);
  io.close();
  await app.close().catch(() => {});
  if (env.PEER_OBLITERATE !== '0') await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
