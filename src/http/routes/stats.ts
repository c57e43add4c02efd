// GET /api/stats (api.md): counts, throughput, run times, queue, sockets and nodes over `?window=`
// (default 1h), of the caller's tasks or, with `?all=true` (admins only), every user's.
import type { FastifyPluginAsync } from 'fastify';
import type { Stats } from '../../contract/index.ts';
import { bearerAuth, requireAdmin } from '../auth-hook.ts';
import { validationFailed } from '../errors.ts';

/** What the route needs of the tasks part. */
export interface StatsSource {
  /** Null when the window is not one it understands. */
  read(owner: string | null, window: string): Promise<Stats | null>;
}

export interface StatsRoutesOptions {
  stats: StatsSource;
  tokens: Parameters<typeof bearerAuth>[0];
}

export const DEFAULT_STATS_WINDOW = '1h';

export const statsRoutes: FastifyPluginAsync<StatsRoutesOptions> = async (app, opts) => {
  app.addHook('onRequest', bearerAuth(opts.tokens));
  app.get('/api/stats', async (request) => {
    const query = request.query as Record<string, unknown>;
    const all = query.all;
    if (all !== undefined && all !== 'true' && all !== 'false')
      throw validationFailed([{ field: 'all', message: 'must be true or false' }]);
    if (all === 'true') requireAdmin(request, 'all=true');
    const window = query.window ?? DEFAULT_STATS_WINDOW;
    const stats =
      typeof window === 'string'
        ? await opts.stats.read(all === 'true' ? null : request.userId, window)
        : null;
    if (!stats)
      throw validationFailed([
        { field: 'window', message: 'must be an integer and a unit (m, h, d), from 1m to 31d, e.g. 1h' },
      ]);
    return stats;
  });
};
