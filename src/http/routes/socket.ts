// HTTP glue for the LongPoll transport: hands raw GET/POST/OPTIONS /socket/longpoll requests to
// the channels part, which owns the protocol.
import type { FastifyPluginAsync } from 'fastify';
import { HttpError } from '../errors.ts';

export const WEBSOCKET_PATH = '/socket/websocket';
const NOT_AN_UPGRADE = new HttpError(
  'bad_request',
  `${WEBSOCKET_PATH} takes WebSocket upgrades only (Connection: Upgrade, Upgrade: websocket)`,
).body();

export type LongPollHandler = (req: {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string | undefined;
}) => Promise<{ status: number; headers: Record<string, string>; body: string }>;

export const socketRoutes: FastifyPluginAsync<{ longPoll: LongPollHandler; bodyLimit: number }> = async (
  app,
  opts,
) => {
  // LongPoll bodies are ndjson (or one JSON message from old clients): keep them as text.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: opts.bodyLimit }, (_req, body, done) =>
    done(null, body),
  );

  const handle = async (request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const res = await opts.longPoll({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: typeof request.body === 'string' ? request.body : undefined,
    });
    reply.code(res.status).headers(res.headers);
    return res.body;
  };
  app.route({ method: ['GET', 'POST', 'OPTIONS'], url: '/socket/longpoll', handler: handle });
  // A WebSocket upgrade never reaches Fastify (the channels part takes the server's 'upgrade'
  // event); a plain GET or POST here is a broken upgrade: 400, as Phoenix answers (its body is
  // empty; ours is api.md's error body, which no Phoenix client reads).
  app.route({
    method: ['GET', 'POST'],
    url: WEBSOCKET_PATH,
    handler: (_request, reply) => {
      reply.code(400).send(NOT_AN_UPGRADE);
    },
  });
};
