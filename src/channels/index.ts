// The channels part's public face: attaches the Phoenix Channels server (WebSocket on the HTTP
// server's upgrade event, LongPoll as a framework-neutral handler). It must not touch the database.
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { OriginPolicy, type Tokens } from '../auth/index.ts';
import type { Cluster } from '../bus/index.ts';
import type { Config } from '../config/index.ts';
import { Router } from './router.ts';
import { Counters, DrainWatch, Session, type SessionLimits, type Transport } from './session.ts';
import { type TaskTopicSource, taskChannel } from './task-channel.ts';
import { RefusalLog, type SocketEndpoint, SocketQuota } from './transports/connect.ts';
import { type LongPollRequest, type LongPollResponse, LongPollTransport } from './transports/longpoll.ts';
import { WebSocketTransport } from './transports/websocket.ts';
import { type UserTopicSource, userChannel } from './user-channel.ts';

export { negotiateVersion } from './serializers/serializer.ts';
export { v1 } from './serializers/v1.ts';
export { v2 } from './serializers/v2.ts';
export type { LongPollRequest, LongPollResponse };

export interface ChannelsOptions {
  /** Gets the 'upgrade' handling for /socket/websocket. */
  server: Server;
  /** The tasks part, as the topic channels need it. */
  tasks: TaskTopicSource & UserTopicSource;
  tokens: Pick<Tokens, 'verify'>;
  config: Pick<
    Config,
    | 'allowedOrigins'
    | 'maxFrameBytes'
    | 'maxChannelsPerSocket'
    | 'socketIdleTimeoutMs'
    | 'socketSoftBufferBytes'
    | 'socketHardBufferBytes'
    | 'longPollWindowMs'
    | 'maxSocketsPerUser'
    | 'maxMessagesPerSecond'
  >;
  log: Logger;
  /** The cluster (absent for a lone node): LongPoll requests for another node's session go there. */
  cluster?: Pick<Cluster, 'nodeId' | 'request' | 'handle' | 'isPeer'>;
}

export interface Channels {
  /** LongPoll: framework-neutral; http registers GET/POST/OPTIONS /socket/longpoll and calls this. */
  longPoll(req: LongPollRequest): Promise<LongPollResponse>;
  /** Counts for /metrics and tests. */
  stats(): { sockets: number; channels: number; conflated: number; eventsOut: number };
  /** Refuse new sockets while the open ones carry on (the start of a drain). */
  stopAccepting(): void;
  /** Stop accepting sockets; close every socket with `code` (never 1000; default 1012). */
  close(code?: number, reason?: string): Promise<void>;
}

const CLOSE_SERVICE_RESTART = 1012;
const LONGPOLL_OP = 'longpoll';
const LONGPOLL_GONE: LongPollResponse = {
  status: 200,
  headers: { 'access-control-allow-origin': '*', 'content-type': 'application/json; charset=utf-8' },
  body: '{"status":410}',
};

/** A LongPoll request as another node forwards it (anything else on the bus is dropped). */
function isLongPollRequest(value: unknown): value is LongPollRequest {
  const r = value as LongPollRequest;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.method === 'string' &&
    typeof r.url === 'string' &&
    typeof r.headers === 'object' &&
    r.headers !== null &&
    (r.body === undefined || r.body === null || typeof r.body === 'string')
  );
}

export function attachChannels(opts: ChannelsOptions): Channels {
  const { config, tokens } = opts;
  const log = opts.log.child({ part: 'channels' });
  const counters = new Counters();
  const drainWatch = new DrainWatch();
  const router = new Router().add('task:*', taskChannel(opts.tasks)).add('user:*', userChannel(opts.tasks));
  const limits: SessionLimits = {
    maxChannels: config.maxChannelsPerSocket,
    softBufferBytes: config.socketSoftBufferBytes,
    hardBufferBytes: config.socketHardBufferBytes,
    maxMessagesPerSecond: config.maxMessagesPerSecond,
  };
  const endpoint: SocketEndpoint = {
    origins: new OriginPolicy(config.allowedOrigins),
    quota: new SocketQuota(config.maxSocketsPerUser),
    refusals: new RefusalLog(log),
    log,
    async authenticate(token) {
      if (!token) return undefined;
      try {
        return (await tokens.verify(token)).userId;
      } catch {
        return undefined;
      }
    },
    openSession(userId: string, transport: Transport) {
      return new Session({ userId, transport, router, limits, counters, drainWatch, log });
    },
  };
  const websocket = new WebSocketTransport({
    server: opts.server,
    endpoint,
    maxFrameBytes: config.maxFrameBytes,
    idleTimeoutMs: config.socketIdleTimeoutMs,
  });
  const { cluster } = opts;
  const longPoll = new LongPollTransport({
    endpoint,
    windowMs: config.longPollWindowMs,
    maxBodyBytes: config.maxFrameBytes,
    node: cluster?.nodeId,
    forward: cluster
      ? async (node, req) => {
          if (!cluster.isPeer(node)) return LONGPOLL_GONE; // that node is gone: start a new session
          try {
            return (await cluster.request(
              node,
              LONGPOLL_OP,
              req,
              config.longPollWindowMs + 5000,
            )) as LongPollResponse;
          } catch (err) {
            log.debug({ err, node }, 'forwarded LongPoll request failed');
            return LONGPOLL_GONE;
          }
        }
      : undefined,
  });
  // The other side: requests other nodes received for sessions held here.
  cluster?.handle(LONGPOLL_OP, (req) => (isLongPollRequest(req) ? longPoll.handle(req) : LONGPOLL_GONE));

  return {
    longPoll: (req) => longPoll.handle(req),
    stats: () => ({
      sockets: websocket.size + longPoll.size,
      channels: counters.channels,
      conflated: counters.conflated,
      eventsOut: counters.eventsOut,
    }),
    stopAccepting() {
      websocket.stopAccepting();
      longPoll.stopAccepting();
    },
    async close(code = CLOSE_SERVICE_RESTART, reason = 'server restart') {
      if (code === 1000) {
        // 1000 tells phoenix.js never to reconnect (4.9).
        log.warn('channels close code 1000 replaced by 1012');
        code = CLOSE_SERVICE_RESTART;
      }
      await Promise.all([websocket.close(code, reason), longPoll.close(code, reason)]);
      drainWatch.stop();
    },
  };
}
