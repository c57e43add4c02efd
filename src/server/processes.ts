// All cores of one machine: N server processes (node:cluster workers) sharing one port, joined over
// the bus as any nodes are. Without DATABASE_URL this (primary) process runs the one embedded
// PostgreSQL they all use, and the `postgres` bus unless another is configured. A worker that
// dies is started again under the same node id (so its jobs are freed at once); stop() drains
// every worker (SIGTERM) and then stops the database.
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import type { Logger } from 'pino';
import { loadOrCreateSecret } from '../auth/index.ts';
import { ConfigError, loadConfig } from '../config/index.ts';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../db/index.ts';

/** What a worker tells the primary once it serves. */
export interface WorkerReady {
  type: 'taskwire:ready';
  url: string;
  nodeId: string;
}

export interface ProcessGroup {
  readonly url: string;
  readonly secret: string;
  readonly dataDir: string;
  readonly secretGenerated: boolean;
  readonly nodeIds: string[];
  stop(): Promise<void>;
}

export interface ProcessGroupOptions {
  count: number;
  env: Record<string, string | undefined>;
  /** The script and arguments a worker runs (it must start one server and send WorkerReady). */
  exec: string;
  args: string[];
  log: Logger;
}

const READY_TIMEOUT_MS = 60_000;
const RESTART_DELAY_MS = 1000;

export function isWorkerReady(msg: unknown): msg is WorkerReady {
  return typeof msg === 'object' && msg !== null && (msg as WorkerReady).type === 'taskwire:ready';
}

export async function startProcessGroup(opts: ProcessGroupOptions): Promise<ProcessGroup> {
  const { log } = opts;
  const env = { ...opts.env };
  const config = loadConfig(env);
  if (env.TASKWIRE_BUS === 'memory') {
    throw new ConfigError(
      'TASKWIRE_BUS=memory keeps each process alone; --processes needs postgres, nats or redis',
    );
  }
  let embedded: EmbeddedPostgres | undefined;
  if (!config.databaseUrl) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPgPort,
      log: (msg) => log.debug({ component: 'embedded-postgres' }, msg),
    });
    env.DATABASE_URL = embedded.url;
  }
  const [secret, secretGenerated] = config.secret
    ? [config.secret, false]
    : await loadOrCreateSecret(config.dataDir);
  env.TASKWIRE_SECRET = secret;
  env.TASKWIRE_BUS ??= 'postgres';
  const base = config.nodeId ?? `${os.hostname()}:${config.port}`;
  const nodeIds = Array.from({ length: opts.count }, (_, i) => `${base}/${i + 1}`);

  cluster.setupPrimary({ exec: opts.exec, args: opts.args });
  let stopping = false;
  const workers = new Map<string, Worker>();
  let url = '';

  const fork = (nodeId: string): Promise<WorkerReady> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork({ ...env, TASKWIRE_NODE_ID: nodeId });
      workers.set(nodeId, worker);
      const timer = setTimeout(
        () => reject(new Error(`${nodeId} not ready in ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      worker.on('message', (msg: unknown) => {
        if (!isWorkerReady(msg)) return;
        clearTimeout(timer);
        resolve(msg);
      });
      worker.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (workers.get(nodeId) === worker) workers.delete(nodeId);
        if (stopping) return;
        reject(new Error(`${nodeId} exited (${signal ?? code}) before it was ready`));
        log.error({ node: nodeId, code, signal }, 'server process died; starting it again');
        setTimeout(() => {
          if (!stopping)
            fork(nodeId).catch((err: unknown) => log.error({ err, node: nodeId }, 'restart failed'));
        }, RESTART_DELAY_MS).unref();
      });
    });

  const stop = async () => {
    stopping = true;
    await Promise.all(
      [...workers.values()].map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const kill = setTimeout(() => worker.process.kill('SIGKILL'), config.shutdownTimeoutMs + 10_000);
            worker.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            worker.process.kill('SIGTERM');
          }),
      ),
    );
    await embedded?.stop();
  };

  try {
    const ready = await Promise.all(nodeIds.map(fork));
    url = ready[0].url;
  } catch (err) {
    await stop();
    throw err;
  }
  log.info({ url, nodes: nodeIds, bus: env.TASKWIRE_BUS }, 'taskwire processes listening');
  return { url, secret, secretGenerated, dataDir: config.dataDir, nodeIds, stop };
}
