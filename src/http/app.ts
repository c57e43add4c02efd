// Builds the Fastify app: routes, error mapping, body limit, auth, request logs (tokens redacted).
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { OriginPolicy, type Tokens } from '../auth/index.ts';
import type { TaskService } from '../tasks/index.ts';
import { errorHandler } from './error-handler.ts';
import { registerApiDocs } from './openapi.ts';
import { RateLimiter } from './rate-limit.ts';
import { clientErrorHandler, frameworkErrors, notFoundHandler, refuseConnect } from './refusals.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { healthRoutes } from './routes/health.ts';
import { outputRoutes } from './routes/output.ts';
import { type LongPollHandler, socketRoutes, WEBSOCKET_PATH } from './routes/socket.ts';
import { type StatsSource, statsRoutes } from './routes/stats.ts';
import { taskRoutes } from './routes/tasks.ts';

export interface HttpAppOptions {
  service: TaskService;
  tokens: Pick<Tokens, 'verify'>;
  log: Logger;
  metrics: Registry;
  bodyLimitBytes: number;
  /** A request not fully received by then gets 408 (0: no bound). */
  requestTimeoutMs?: number;
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
  /** SSE readers whose unread bytes pass this are cut off (they resume with Last-Event-ID). */
  maxStreamBufferBytes?: number;
}

export function buildHttpApp(opts: HttpAppOptions): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: opts.log as unknown as import('fastify').FastifyBaseLogger,
    bodyLimit: opts.bodyLimitBytes,
    // Every refusal in api.md's error body: the parser's and the router's. No 503 of Fastify's own
    // while closing: close() cuts every connection at once (forceCloseConnections), and a request
    // read just before that is served as usual.
    clientErrorHandler: clientErrorHandler(() => app),
    frameworkErrors,
    return503OnClosing: false,
    forceCloseConnections: true,
    // Only the WebSocket endpoint upgrades; elsewhere an Upgrade header is ignored (RFC 9110) and
    // the request is served as usual. Node < 24.9 ignores the option: the transport answers 404.
    http: {
      shouldUpgradeCallback: (req) => req.url?.split('?')[0] === WEBSOCKET_PATH,
      // Node checks request deadlines on this interval: a fraction of the timeout keeps it honest.
      connectionsCheckingInterval: Math.max(
        250,
        Math.min(30_000, (opts.requestTimeoutMs ?? 0) / 4 || 30_000),
      ),
      headersTimeout: Math.min(60_000, opts.requestTimeoutMs || 60_000),
    },
    // A request's head and body must arrive within this (slow clients otherwise hold memory).
    requestTimeout: opts.requestTimeoutMs ?? 0,
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true, useDefaults: true },
    },
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler(app));
  // `Expect:` other than 100-continue: Node would answer a bare 417; serving the request as if
  // the field were absent is what RFC 9110 also allows.
  app.server.on('checkExpectation', (req, res) => app.server.emit('request', req, res));
  app.server.on('connect', refuseConnect);
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
  app.register(outputRoutes, {
    service: opts.service,
    tokens: opts.tokens,
    maxBufferedBytes: opts.maxStreamBufferBytes ?? 8 * 1024 * 1024,
  });
  if (opts.longPoll) app.register(socketRoutes, { longPoll: opts.longPoll, bodyLimit: opts.bodyLimitBytes });
  return app;
}

/** Custom request headers a browser page may send to the API, and response headers it may read. */
const CORS_REQUEST_HEADERS = ['authorization', 'content-type', 'idempotency-key'];
const CORS_EXPOSED_HEADERS = ['retry-after', 'taskwire-wait'];

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
