// Maps anything a route or Fastify throws to api.md's error body. Unknown errors are logged and
// answered as a bare 500 `internal` (never a stack); an unreachable database is 503 `unavailable`.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable } from '../db/index.ts';
import { InputError } from '../tasks/index.ts';
import { ERROR_STATUS, type ErrorCode, type FieldDetail, HttpError, validationFailed } from './errors.ts';

function fromValidation(err: FastifyError): HttpError {
  const fields: FieldDetail[] = (err.validation ?? []).map((v) => {
    const path = v.instancePath.replace(/^\//, '').replaceAll('/', '.');
    const missing = (v.params as { missingProperty?: string }).missingProperty;
    const field = [path, missing].filter(Boolean).join('.') || (err.validationContext ?? 'body');
    return { field, message: v.message ?? 'is invalid' };
  });
  return validationFailed(fields);
}

export function toHttpError(err: unknown): HttpError | null {
  if (err instanceof HttpError) return err;
  if (err instanceof InputError) return validationFailed(err.fields);
  if (isDatabaseUnavailable(err))
    return new HttpError('unavailable', 'the database is unavailable; try again shortly');
  const fe = err as FastifyError;
  if (fe?.validation) return fromValidation(fe);
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError('payload_too_large', 'the request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError('unsupported_media_type', 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HttpError('bad_request', 'the body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError('bad_request', 'the body does not match its Content-Length');
  }
  if (fe instanceof SyntaxError) return new HttpError('bad_request', 'the body is not valid JSON');
  // Any other refusal of what the client sent (Fastify's and its plugins' 4xx errors).
  const status = fe?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = (Object.keys(ERROR_STATUS) as ErrorCode[]).find((c) => ERROR_STATUS[c] === status);
    return new HttpError(code ?? 'bad_request', code ? fe.message : 'the request is not valid');
  }
  return null;
}

export function errorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const mapped = toHttpError(err);
  if (mapped) {
    if (mapped.status >= 500) request.log.warn({ err }, mapped.message);
    if (mapped.code === 'rate_limited' && typeof mapped.details.retry_after_ms === 'number') {
      reply.header('retry-after', Math.ceil(mapped.details.retry_after_ms / 1000));
    }
    reply.code(mapped.status).send(mapped.body());
    return;
  }
  request.log.error({ err }, 'unhandled error');
  reply.code(500).send(new HttpError('internal', 'internal error').body());
}
