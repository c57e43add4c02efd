// The web dashboard (issue 11) at /dashboard: the built bundle (dist/dashboard, from
// src/dashboard by scripts/build.ts) served as static files from the package, no CDN. The page
// signs in with a token from the URL fragment or pasted, never from the query string. A strict
// Content-Security-Policy keeps any value that slipped past escaping from running as script.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { HttpError } from '../errors.ts';

export interface DashboardRoutesOptions {
  /** The built bundle: index.html and its assets. */
  dir: string;
}

export const DASHBOARD_PATH = '/dashboard';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export const dashboardRoutes: FastifyPluginAsync<DashboardRoutesOptions> = async (app, opts) => {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    return payload;
  });
  const index = path.join(opts.dir, 'index.html');
  if (!existsSync(index)) {
    const missing = async () => {
      throw new HttpError('unavailable', 'the dashboard is not built: run `npm run build`');
    };
    app.get(DASHBOARD_PATH, missing);
    app.get(`${DASHBOARD_PATH}/*`, missing);
    return;
  }
  // Read once: the bundle does not change while the server runs.
  const html = readFileSync(index);
  // `/dashboard` itself (the link `npm start` prints): the page, no redirect, so the fragment stays.
  app.get(DASHBOARD_PATH, async (_request, reply) => {
    reply.header('cache-control', 'no-cache');
    return reply.type('text/html; charset=utf-8').send(html);
  });
  await app.register(fastifyStatic, {
    root: opts.dir,
    prefix: `${DASHBOARD_PATH}/`,
    index: ['index.html'],
    cacheControl: false,
    decorateReply: false,
  });
};
