// Several real `taskwire start` processes on one test database, joined over a bus (postgres, nats
// or redis), with fast liveness so failover fits in a test; and a phoenix.js follower that records
// what one client of one node sees of one topic (events, join replies, errors).
import { Socket } from 'phoenix';
import { EVENT_CLASS } from '../../src/contract/index.ts';
import { type ServerProcess, spawnServer } from './process.ts';
import { waitFor } from './wait.ts';

export type BusKind = 'postgres' | 'nats' | 'redis';
export const BUSES: BusKind[] = ['postgres', 'nats', 'redis'];

/** The machine's engines (CI starts them when down); namespaces keep test clusters apart. */
export const ENGINE_URLS: Record<BusKind, Record<string, string>> = {
  postgres: {},
  nats: { NATS_URL: process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222' },
  redis: { REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
};

/**
 * Liveness fast enough that a dead node is rescued in a few seconds, with thresholds (2.5 s on the
 * bus, 3 s in the table) that a loaded machine's pauses don't reach.
 */
export const FAST_LIVENESS = {
  TASKWIRE_HEARTBEAT_MS: '300',
  TASKWIRE_NODE_DEAD_AFTER_MS: '3000',
  TASKWIRE_BUS_HEARTBEAT_MS: '500',
  TASKWIRE_SHUTDOWN_TIMEOUT_MS: '1000',
};

export interface NodeSpec {
  id: string;
  /** Runs jobs (false: TASKWIRE_CONCURRENCY=0, an API-and-sockets node). */
  worker: boolean;
  env?: Record<string, string>;
}

export async function startNodes(
  databaseUrl: string,
  bus: BusKind,
  specs: NodeSpec[],
  engineEnv: Record<string, string> = ENGINE_URLS[bus],
): Promise<ServerProcess[]> {
  return Promise.all(
    specs.map((spec) =>
      spawnServer({
        databaseUrl,
        nodeId: spec.id,
        env: {
          TASKWIRE_BUS: bus,
          ...engineEnv,
          ...FAST_LIVENESS,
          ...(spec.worker ? {} : { TASKWIRE_CONCURRENCY: '0' }),
          ...spec.env,
        },
      }),
    ),
  );
}

export interface Followed {
  topic: string;
  /** Every event pushed on the topic, in arrival order. */
  events: Array<{ event: string; payload: any; at: number }>;
  /** Every ok join reply (the first join, then each rejoin). */
  replies: any[];
  /** Join refusals and channel errors (phx_error) seen. */
  errors: any[];
  socket: Socket;
  close(): void;
  /** Resolves once an event named `name` (matching `where`) has arrived. */
  until(name: string, where?: (payload: any) => boolean, timeoutMs?: number): Promise<any>;
}

/** Every event a client may see on a topic (the contract's list). */
const EVENTS = Object.keys(EVENT_CLASS);

/**
 * Follows `topic` on the node at `url` with the official client; resolves after the first ok join.
 * The client's heartbeat is phoenix.js's default (30 s), as a real client's: a rejoin the tests see
 * is one the server asked for, not a client that gave up on a node busy for a second.
 */
export async function follow(url: string, token: string, topic: string): Promise<Followed> {
  const socket = new Socket(`${url.replace(/^http/, 'ws')}/socket`, {
    params: { token },
    rejoinAfterMs: () => 200,
    reconnectAfterMs: () => 200,
  });
  socket.connect();
  const channel = socket.channel(topic, {});
  const f: Followed = {
    topic,
    events: [],
    replies: [],
    errors: [],
    socket,
    close: () => socket.disconnect(),
    async until(name, where = () => true, timeoutMs = 15_000) {
      const found = await waitFor(
        () => f.events.find((e) => e.event === name && where(e.payload)),
        `${name} on ${topic}`,
        timeoutMs,
      );
      return found.payload;
    },
  };
  for (const event of EVENTS)
    channel.on(event, (payload) => {
      f.events.push({ event, payload, at: Date.now() });
    });
  channel.onError((reason) => {
    f.errors.push({ phx_error: reason ?? true });
  });
  channel
    .join()
    .receive('ok', (reply) => f.replies.push(reply))
    .receive('error', (reply) => f.errors.push(reply));
  await waitFor(() => f.replies.length > 0 || f.errors.length > 0, `join ${topic} on ${url}`, 15_000);
  if (f.replies.length === 0) {
    f.close();
    throw new Error(`join ${topic} refused: ${JSON.stringify(f.errors)}`);
  }
  return f;
}

/** The seqs of a follower's events of one task, checked strictly increasing; returns them. */
export function seqsOf(f: Followed, taskId: string): number[] {
  return f.events
    .filter((e) => e.payload.task_id === taskId && typeof e.payload.seq === 'number')
    .map((e) => e.payload.seq);
}
