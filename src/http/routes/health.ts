// Liveness, readiness (database reachable, workers running; what is degraded) and Prometheus metrics.
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';

export interface HealthRoutesOptions {
  /** Null when ready, else why not. */
  notReady: () => Promise<string | null>;
  /** Parts working only in part: /readyz stays 200 (the node serves) but names them. */
  degraded?: () => string[];
  metrics: Registry;
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, opts) => {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const reason = await opts.notReady();
    if (reason) {
      reply.code(503);
      return { status: 'unavailable', reason };
    }
    const degraded = opts.degraded?.() ?? [];
    return degraded.length > 0 ? { status: 'degraded', degraded } : { status: 'ok' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', opts.metrics.contentType);
    return opts.metrics.metrics();
  });
};
