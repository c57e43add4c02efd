// The composition root: builds every part from the config and wires them together; starts
// them in order and stops them gracefully. It holds no logic of its own beyond that order.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Logger } from 'pino';
import { loadOrCreateSecret, Tokens } from '../auth/index.ts';
import { type BusTransport, Cluster, PubSub } from '../bus/index.ts';
import { attachChannels, type Channels } from '../channels/index.ts';
import { type Config, loadConfig } from '../config/index.ts';
import { TASK_TOPIC_PREFIX, taskTopic } from '../contract/index.ts';
import {
  aliveNodes,
  closePool,
  createPool,
  type EmbeddedPostgres,
  getTask,
  inFlightCounts,
  migrate,
  ping,
  startEmbeddedPostgres,
  waitingCounts,
} from '../db/index.ts';
import { buildHttpApp, createMetrics } from '../http/index.ts';
import { Liveness, type QueueWorker, startWorker } from '../queue/index.ts';
import {
  demoTask,
  generateTask,
  OutputWriter,
  Pruner,
  Registry,
  Runner,
  Scheduler,
  Snapshotter,
  StatsReader,
  StatsTicker,
  Supervisor,
  TaskFeed,
  TaskService,
  type TaskType,
  TaskTypes,
} from '../tasks/index.ts';
import { createBusTransport } from './bus-transport.ts';
import { releaseStartupMemory, startHeapRelease } from './heap-release.ts';
import { createLogger } from './logger.ts';
import { loadTaskModules } from './task-modules.ts';

export interface StartOptions {
  /** Settings over the environment's. */
  config?: Partial<Config>;
  /** The environment to read (default process.env). */
  env?: Record<string, string | undefined>;
  /** Task types to run besides the built-in `demo` (the embedding API). */
  tasks?: TaskType[];
  log?: Logger;
  /** The bus transport to use instead of the one the config names (tests: a shared in-memory engine). */
  busTransport?: BusTransport;
  /** The built dashboard to serve at /dashboard (default: the package's dist/dashboard). */
  dashboardDir?: string;
}

/** Where `npm run build` puts the dashboard: the same place from src/server and dist/server. */
export const DEFAULT_DASHBOARD_DIR = path.resolve(import.meta.dirname, '../../dist/dashboard');

export interface TaskwireServer {
  readonly url: string;
  readonly port: number;
  readonly config: Config;
  readonly databaseUrl: string;
  readonly pool: pg.Pool;
  readonly tokens: Tokens;
  readonly service: TaskService;
  readonly registry: Registry;
  readonly supervisor: Supervisor;
  readonly pubsub: PubSub;
  readonly snapshotter: Snapshotter;
  readonly runner: Runner;
  readonly channels: Channels;
  readonly stats: StatsReader;
  readonly pruner: Pruner;
  readonly app: FastifyInstance;
  readonly log: Logger;
  readonly nodeId: string;
  /** True when the secret was generated on this start (first run). */
  readonly secretGenerated: boolean;
  /** Graceful stop: no new work, running attempts get the deadline, then everything closes. */
  stop(): Promise<void>;
}

/** At most this many wake-ups per sweep and node. */
const SWEEP_MAX = 20;

function defaultNodeId(config: Config): string {
  if (config.nodeId) return config.nodeId;
  // A stable id lets a restart free its own old jobs at once; port 0 means "any", so no two
  // processes would share it, and a random suffix keeps them apart.
  return config.port === 0
    ? `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
    : `${os.hostname()}:${config.port}`;
}

export async function startServer(opts: StartOptions = {}): Promise<TaskwireServer> {
  const config = loadConfig(opts.env ?? process.env, opts.config);
  const nodeId = defaultNodeId(config);
  // Every line names the process: task lines need task_id, attempt and node (issue 6).
  const log = (opts.log ?? createLogger(config)).child({ node: nodeId });
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse())
      await fn().catch((err: unknown) => log.warn({ err }, 'cleanup step failed'));
  };

  try {
    let embedded: EmbeddedPostgres | undefined;
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres({
        dataDir: config.dataDir,
        port: config.embeddedPgPort,
        log: (msg) => log.debug({ component: 'embedded-postgres' }, msg),
      });
      cleanups.push(() => embedded!.stop());
      databaseUrl = embedded.url;
    }
    const [secret, secretGenerated] = config.secret
      ? [config.secret, false]
      : await loadOrCreateSecret(config.dataDir);
    const tokens = new Tokens(secret);

    const pool = createPool({
      connectionString: databaseUrl,
      max: config.dbPoolSize,
      timeoutMs: config.dbTimeoutMs,
      onError: (err) => log.warn({ err }, 'idle database connection lost'),
    });
    cleanups.push(() => closePool(pool));
    await migrate(pool);

    const types = new TaskTypes().register(demoTask).register(generateTask);
    for (const type of [...(opts.tasks ?? []), ...(await loadTaskModules(config.taskModules))])
      types.register(type);

    let metrics: ReturnType<typeof createMetrics> | undefined;
    const load = (id: string) => getTask(pool, id);
    const registry = new Registry();
    // The bus: a lone node (memory) has none; otherwise the cluster protocol over a transport.
    const transport =
      opts.busTransport ??
      (config.bus === 'memory' ? undefined : await createBusTransport(config, databaseUrl, log));
    const cluster = transport
      ? new Cluster({ nodeId, transport, log: log.child({ part: 'bus' }), beatMs: config.busHeartbeatMs })
      : undefined;
    if (cluster) cluster.onLag = (ms) => metrics?.busLag.observe(ms / 1000);
    const pubsub = new PubSub({
      cluster,
      log,
      // A task running here keeps feeding its subscribers here while the bus is down.
      isLocalFeed: (topic) =>
        topic.startsWith(TASK_TOPIC_PREFIX) && registry.has(topic.slice(TASK_TOPIC_PREFIX.length)),
    });
    const feed = new TaskFeed(pubsub);
    const snapshotter = new Snapshotter({
      pool,
      intervalMs: config.snapshotIntervalMs,
      log,
      onFlush: (count, ms) => {
        metrics?.snapshotRows.inc(count);
        metrics?.snapshotFlush.observe(ms / 1000);
      },
    });
    const output = new OutputWriter({
      pool,
      intervalMs: config.outputFlushMs,
      log,
      onFlush: (rows, chunks, ms) => {
        metrics?.outputRows.inc(rows);
        metrics?.outputChunks.inc(chunks);
        metrics?.outputFlush.observe(ms / 1000);
      },
    });
    const supervisor = new Supervisor({
      registry,
      feed,
      log,
      load,
      dirty: (actor) => {
        metrics?.progressIn.inc();
        snapshotter.markDirty(actor);
      },
      outputDirty: (actor) => output.markDirty(actor),
      outputLimits: {
        chunkBytes: config.outputChunkBytes,
        maxChunks: config.outputMaxChunks,
        maxBytes: config.outputMaxBytes,
      },
      lost: (taskId) => pubsub.lose(taskTopic(taskId)),
    });
    const runner = new Runner({
      pool,
      registry,
      supervisor,
      feed,
      output,
      types,
      nodeId,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      userConcurrency: config.userConcurrency,
      log,
      onOutcome: (outcome, type) => metrics?.attempts.inc({ type, outcome }),
    });
    const service = new TaskService({
      pool,
      registry,
      runner,
      feed,
      pubsub,
      types,
      defaultType: config.defaultTaskType,
      defaultMaxAttempts: config.defaultMaxAttempts,
      nodeId,
      maxDelayMs: config.maxDelayMs,
      log,
      onCreated: (task) => metrics?.tasksCreated.inc({ type: task.type }),
    });
    if (!types.get(config.defaultTaskType)) {
      throw new Error(`TASKWIRE_DEFAULT_TYPE ${config.defaultTaskType} is not a registered task type`);
    }

    // Before anything runs here, hear what the live nodes want (design.md: a join anywhere gets
    // every event), so the first events of a task claimed here reach their remote subscribers.
    await pubsub.start(cluster ? await aliveNodes(pool, config.nodeDeadAfterMs) : []);
    cleanups.push(() => pubsub.stop());
    snapshotter.start();
    cleanups.push(() => snapshotter.stop());
    output.start();
    cleanups.push(() => output.stop());

    let worker: QueueWorker | undefined;
    let channels: Channels | undefined;
    metrics = createMetrics(() => ({
      sockets: () => channels?.stats().sockets ?? 0,
      channels: () => channels?.stats().channels ?? 0,
      conflated: () => channels?.stats().conflated ?? 0,
      eventsOut: () => channels?.stats().eventsOut ?? 0,
      liveActors: () => registry.size,
      snapshotPending: () => snapshotter.pending,
      counts: () => inFlightCounts(pool),
      waiting: () => waitingCounts(pool, runner.caps),
      bus: cluster
        ? () => {
            const c = cluster.stats();
            const t = cluster.transport.stats();
            return { ...c, dropped: c.dropped + t.dropped, reconnects: t.reconnects };
          }
        : undefined,
    }));

    const stats = new StatsReader({
      pool,
      nodeId,
      nodeDeadAfterMs: config.nodeDeadAfterMs,
      localSockets: () => channels?.stats().sockets ?? 0,
    });
    const statsTicker = new StatsTicker({ reader: stats, intervalMs: config.statsIntervalMs, log });
    cleanups.push(async () => statsTicker.stop());

    const app = buildHttpApp({
      service,
      tokens,
      log,
      metrics: metrics.registry,
      bodyLimitBytes: config.bodyLimitBytes,
      requestTimeoutMs: config.requestTimeoutMs,
      maxCreatesPerMinute: config.maxCreatesPerMinute,
      allowedOrigins: config.allowedOrigins,
      notReady: async () => {
        if (!(await ping(pool))) return 'database unreachable';
        if (config.concurrency > 0 && !worker?.running) return 'queue workers not running';
        return null;
      },
      degraded: () => (pubsub.available ? [] : ['bus']),
      longPoll: (req) => channels!.longPoll(req),
      maxStreamBufferBytes: config.socketHardBufferBytes,
      stats,
      dashboardDir: opts.dashboardDir ?? DEFAULT_DASHBOARD_DIR,
    });
    cleanups.push(() => app.close());
    channels = attachChannels({
      server: app.server,
      tasks: service,
      tokens,
      config,
      log,
      cluster,
      watchStats: (listener) => statsTicker.watch(listener),
    });
    cleanups.push(() => channels!.close(1012, 'server stopped'));

    // TASKWIRE_CONCURRENCY=0: a node that serves the API and sockets but runs no jobs.
    if (config.concurrency > 0) {
      worker = await startWorker({
        pool,
        concurrency: config.concurrency,
        pollIntervalMs: config.pollIntervalMs,
        log,
        shutdownTimeoutMs: config.shutdownTimeoutMs,
        runJob: (job) => {
          metrics?.queuePickup.observe(Math.max(0, Date.now() - job.runAt.getTime()) / 1000);
          return runner.runJob(job);
        },
      });
      const runningWorker = worker;
      cleanups.push(() => runningWorker.stop());
    }
    const liveness = new Liveness({
      pool,
      nodeId,
      workerIds: () => worker?.workerIds() ?? [],
      heartbeatMs: config.heartbeatIntervalMs,
      deadAfterMs: config.nodeDeadAfterMs,
      log,
      report: () => ({
        sockets: channels?.stats().sockets ?? 0,
        info: { concurrency: config.concurrency, types: types.names() },
      }),
    });
    await liveness.start();
    cleanups.push(() => liveness.stop());
    const stopHeapRelease = startHeapRelease({
      thresholdBytes: config.heapReleaseBytes,
      intervalMs: 1000,
      log,
    });
    cleanups.push(async () => stopHeapRelease());
    const pruner = new Pruner({
      pool,
      retentionSeconds: config.retentionSeconds,
      intervalMs: config.pruneIntervalMs,
      batchSize: config.pruneBatchSize,
      log,
      onPruned: (table, rows) => metrics?.prunedRows.inc({ table }, rows),
    });
    pruner.start();
    cleanups.push(() => pruner.stop());
    if (worker) {
      // The safety net of fair scheduling's wake-ups (see Runner.sweep): once per heartbeat.
      const sweeping = setInterval(() => {
        runner
          .sweep(Math.min(SWEEP_MAX, config.concurrency - runner.running))
          .catch((err: unknown) => log.debug({ err }, 'wake-up sweep failed'));
      }, config.heartbeatIntervalMs);
      sweeping.unref();
      cleanups.push(async () => clearInterval(sweeping));
    }
    // Every node runs the schedules; the database keeps one task per tick.
    const scheduler = new Scheduler({
      pool,
      service,
      types: types.all(),
      owner: config.scheduleOwner,
      log: log.child({ part: 'scheduler' }),
    });
    await scheduler.start();
    cleanups.push(() => scheduler.stop());

    if (config.heapReleaseBytes > 0) {
      // Every route and plugin in place first, so that building them is garbage by then; before
      // the port opens, so that no request waits for the pause.
      await app.ready();
      const pauseMs = releaseStartupMemory();
      if (pauseMs !== undefined) log.debug({ gc_ms: Math.round(pauseMs) }, 'startup memory released');
    }
    try {
      await app.listen({ port: config.port, host: config.host });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new Error(`port ${config.port} on ${config.host} is already in use; set PORT to a free port`);
      }
      throw err;
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    log.info(
      { url, embedded: Boolean(embedded), bus: transport?.kind ?? 'memory', types: types.names() },
      'taskwire listening',
    );

    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= (async () => {
        log.info('stopping: no new jobs or sockets; running attempts get the shutdown deadline');
        channels.stopAccepting();
        // Running handlers get the deadline, then their signal fires; what is left goes back to
        // the queue. Steps run in reverse order of start: liveness, worker (waits for handlers),
        // sockets (1012), HTTP, snapshot flush, pool, embedded database.
        const deadline = setTimeout(() => runner.abortAll(), config.shutdownTimeoutMs);
        deadline.unref();
        try {
          await cleanup();
        } finally {
          clearTimeout(deadline);
        }
        log.info('stopped');
      })();
      return stopping;
    };

    return {
      url,
      port,
      config,
      databaseUrl,
      pool,
      tokens,
      service,
      registry,
      supervisor,
      pubsub,
      snapshotter,
      runner,
      channels,
      stats,
      pruner,
      app,
      log,
      nodeId,
      secretGenerated,
      stop,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
