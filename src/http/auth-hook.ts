// Bearer-token authentication for /api routes: the verified user id lands on request.userId, and
// whether the token carries the admin role on request.admin.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TokenError, type Tokens } from '../auth/index.ts';
import { HttpError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    userId: string;
    admin: boolean;
  }
}

export function bearerAuth(tokens: Pick<Tokens, 'verify'>) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) throw new HttpError('unauthorized', 'missing bearer token (Authorization: Bearer <token>)');
    try {
      const identity = await tokens.verify(match[1]);
      request.userId = identity.userId;
      request.admin = identity.admin;
    } catch (err) {
      throw new HttpError('unauthorized', err instanceof TokenError ? err.message : 'invalid token');
    }
  };
}

/** Whose tasks the caller reads by id: its own, or (null) any user's for an admin. */
export function viewer(request: FastifyRequest): string | null {
  return request.admin ? null : request.userId;
}

/** Refuses a non-admin caller: `403 forbidden` (api.md: admin-only routes and parameters). */
export function requireAdmin(request: FastifyRequest, what: string): void {
  if (!request.admin) throw new HttpError('forbidden', `${what} needs an admin token`);
}
