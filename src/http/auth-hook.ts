// Bearer-token authentication for /api routes: the verified user id lands on request.userId.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TokenError, type Tokens } from '../auth/index.ts';
import { HttpError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    userId: string;
  }
}

export function bearerAuth(tokens: Pick<Tokens, 'verify'>) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) throw new HttpError('unauthorized', 'missing bearer token (Authorization: Bearer <token>)');
    try {
      request.userId = (await tokens.verify(match[1])).userId;
    } catch (err) {
      throw new HttpError('unauthorized', err instanceof TokenError ? err.message : 'invalid token');
    }
  };
}
