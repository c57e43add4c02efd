// Answers for requests no route takes, in api.md's error body: what Node's HTTP parser refuses
// (unknown method, bad framing, oversized headers, timeouts), what Fastify's router refuses (bad
// percent-encoding, over-long params), unknown paths (404) and known paths with another method
// (405 with Allow). It must not know any route's own logic.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, HttpError } from './errors.ts';

// Not `import { STATUS_CODES } from 'node:http'`: an ES import of node:http builds the module's
// namespace, which reads its lazy WebSocket/MessageEvent/CloseEvent getters and so loads undici
// (about 3 MB resident in an idle server that never uses it). The CommonJS object has no facade.
const { STATUS_CODES } = process.getBuiltinModule('node:http');

/** Methods a route may answer; OPTIONS is asked separately (CORS answers it on every path). */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** The methods `path` is served with, OPTIONS last; empty when no route has the path. */
export function allowedMethods(app: FastifyInstance, path: string): string[] {
  const found = (method: string) => {
    try {
      return app.findRoute({ method: method as 'GET', url: path }) !== null;
    } catch {
      return false; // a path the router can't decode has no route
    }
  };
  const allowed: string[] = METHODS.filter(found);
  if (allowed.length > 0 && found('OPTIONS')) allowed.push('OPTIONS');
  return allowed;
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** What Fastify answers when no route has the request's method and path: 405 or 404. */
export function notFoundHandler(app: FastifyInstance) {
  return (request: FastifyRequest, reply: FastifyReply): void => {
    const path = pathOf(request.url);
    const allowed = allowedMethods(app, path);
    // A route that has the method but not the thing (a static file) ends here too: a 404.
    const wrongMethod = allowed.length > 0 && !allowed.includes(request.method);
    const error = wrongMethod
      ? new HttpError('method_not_allowed', `${request.method} is not served on ${path}`)
      : new HttpError('not_found', `no route ${request.method} ${path}`);
    if (wrongMethod) reply.header('allow', allowed.join(', '));
    reply.code(error.status).send(error.body());
  };
}

/** Fastify's `frameworkErrors`: the router refused the URL before any route or hook ran. */
export function frameworkErrors(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  let error: HttpError;
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      error = new HttpError('bad_request', 'the URL is not valid (bad percent-encoding)');
      break;
    case 'FST_ERR_MAX_PARAM_LENGTH':
      // No task id (or any other path parameter) is that long.
      error = new HttpError('not_found', 'no such resource (a path parameter is too long)');
      break;
    default:
      error =
        (err.statusCode ?? 500) < 500
          ? new HttpError('bad_request', 'the request could not be routed')
          : new HttpError('internal', 'internal error');
  }
  reply.code(error.status).send(error.body());
}

/** A complete HTTP/1.1 error response, for a socket that no request object owns. */
export function rawErrorResponse(error: HttpError, headers: Record<string, string> = {}): string {
  const body = JSON.stringify(error.body());
  const lines = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** How long a refused connection may keep sending before it is cut. */
const LINGER_MS = 2000;

/** The request line of what the parser refused, when it got that far: `FOO /path HTTP/1.1`. */
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/\d\.\d\r?\n/;

/** Node's 'clientError' error: llhttp's code, and the bytes it had read (a Buffer at run time). */
type ParserError = Error & { code?: string; rawPacket?: unknown };

/** Maps a parser error (Node's 'clientError') to api.md's code; extra headers for 405. */
function fromParserError(
  app: FastifyInstance,
  err: ParserError,
): { error: HttpError; headers?: Record<string, string> } {
  const code = err.code ?? '';
  const refuse = (c: ErrorCode, message: string) => ({ error: new HttpError(c, message) });
  if (code === 'HPE_HEADER_OVERFLOW') {
    return refuse('header_too_large', 'the request line or headers are too large');
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return refuse('request_timeout', 'the request was not received in time');
  }
  if (code === 'HPE_INVALID_METHOD') {
    // A method Node does not know (FOO, BREW): 405 on a path we serve, 404 on any other.
    const raw = err.rawPacket;
    const line = Buffer.isBuffer(raw) ? REQUEST_LINE.exec(raw.toString('latin1')) : null;
    if (line) {
      const path = pathOf(line[2]);
      const allowed = allowedMethods(app, path);
      if (allowed.length > 0) {
        return {
          error: new HttpError('method_not_allowed', `${line[1]} is not served on ${path}`),
          headers: { Allow: allowed.join(', ') },
        };
      }
      return refuse('not_found', `no route ${line[1]} ${path}`);
    }
  }
  // Framing, header syntax, a NUL or control character in a header: llhttp's code says which.
  const which = code.startsWith('HPE_') ? ` (${code})` : '';
  return refuse('bad_request', `the request is not valid HTTP/1.1${which}`);
}

/** Ends a refused connection after `response`; see clientErrorHandler. */
function answerAndClose(socket: Duplex, response: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  // Answer, half-close, and read what the client is still sending until it closes too: a
  // socket destroyed with unread bytes sends a TCP reset, which can discard the answer.
  socket.end(response);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** CONNECT (a proxy tunnel, which Node hands to the 'connect' event): 405, this is no proxy. */
export function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  socket.on('error', () => socket.destroy());
  const error = new HttpError('method_not_allowed', 'CONNECT is not served: this server is not a proxy');
  answerAndClose(socket, rawErrorResponse(error, { Allow: 'GET, HEAD, POST, OPTIONS' }));
}

/**
 * Fastify's `clientErrorHandler` (Node's 'clientError'): the parser refused the request, so no
 * route, hook or reply exists; answer on the socket and close it.
 */
export function clientErrorHandler(app: () => FastifyInstance) {
  return (err: ParserError, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const { error, headers } = fromParserError(app(), err);
    app().log.debug({ err, status: error.status }, 'malformed request refused');
    answerAndClose(socket, rawErrorResponse(error, headers));
  };
}
