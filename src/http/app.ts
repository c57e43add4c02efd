// Builds the Fastify app: routes, error mapping, body limit, auth, request logs (tokens redacted).
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { OriginPolicy, type Tokens } from '../auth/index.ts';
import type { TaskService } from '../tasks/index.ts';
import { errorHandler } from './error-handler.ts';
import { HttpError } from './errors.ts';
import { registerApiDocs } from './openapi.ts';
import { RateLimiter } from './rate-limit.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { healthRoutes } from './routes/health.ts';
import { type LongPollHandler, socketRoutes } from './routes/socket.ts';
import { type StatsSource, statsRoutes } from './routes/stats.ts';
import { taskRoutes } from './routes/tasks.ts';

export interface HttpAppOptions {
  service: TaskService;
  tokens: Pick<Tokens, 'verify'>;
  log: Logger;
  metrics: Registry;
  bodyLimitBytes: number;
  maxCreatesPerMinute: number;
  /** Browser origins whose pages may call the API (CORS); empty means any. */
  allowedOrigins: string[];
  notReady: () => Promise<string | null>;
  /** What works only in part (e.g. `bus`: other nodes' events don't arrive), for /readyz. */
  degraded?: () => string[];
  longPoll?: LongPollHandler;
  /** GET /api/stats. */
  stats?: StatsSource;
  /** The built dashboard served at /dashboard (absent: no dashboard). */
  dashboardDir?: string;
}

export function buildHttpApp(opts: HttpAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log as unknown as import('fastify').FastifyBaseLogger,
    bodyLimit: opts.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: true,
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true, useDefaults: true },
    },
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send(new HttpError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`).body());
  });
  registerApiDocs(app); // before the routes, so that it sees them
  allowBrowserOrigins(app, new OriginPolicy(opts.allowedOrigins));
  app.register(healthRoutes, { notReady: opts.notReady, degraded: opts.degraded, metrics: opts.metrics });
  app.register(taskRoutes, {
    service: opts.service,
    tokens: opts.tokens,
    createLimiter: new RateLimiter(opts.maxCreatesPerMinute, 60_000),
  });
  if (opts.stats) app.register(statsRoutes, { stats: opts.stats, tokens: opts.tokens });
  if (opts.dashboardDir) app.register(dashboardRoutes, { dir: opts.dashboardDir });
  if (opts.longPoll) app.register(socketRoutes, { longPoll: opts.longPoll, bodyLimit: opts.bodyLimitBytes });
  return app;
}

/** Custom request headers a browser page may send to the API, and response headers it may read. */
const CORS_REQUEST_HEADERS = ['authorization', 'content-type', 'idempotency-key'];
const CORS_EXPOSED_HEADERS = ['retry-after'];

/**
 * CORS for the HTTP API, so that a page served elsewhere can use the browser SDK. Tokens travel
 * in the Authorization header, never in cookies, so no credentials mode is needed. The socket
 * transports answer for themselves (LongPoll has its own CORS, a WebSocket has none).
 */
function allowBrowserOrigins(app: FastifyInstance, origins: OriginPolicy): void {
  const api: FastifyCorsOptions = {
    origin: (origin, cb) => cb(null, origin !== undefined && origins.allows(origin)),
    methods: ['GET', 'POST'], // the API's methods (a cancel is a POST)
    allowedHeaders: CORS_REQUEST_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    maxAge: 3600,
    strictPreflight: false,
  };
  const none: FastifyCorsOptions = { origin: false };
  app.register(cors, {
    delegator: (request, callback) => callback(null, request.url?.startsWith('/socket/') ? none : api),
  });
}
