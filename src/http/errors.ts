// Every HTTP error taskwire answers: api.md's codes and statuses (owned by the contract part), and
// the body shape {"error": {"code", "message", ...details}}. No route invents its own; no stack leaves.
import { ERROR_STATUS, type ErrorBody, type ErrorCode, type FieldDetail } from '../contract/index.ts';

export { ERROR_STATUS, type ErrorBody, type ErrorCode, type FieldDetail } from '../contract/index.ts';

export class HttpError extends Error {
  override name = 'HttpError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = details;
  }

  body(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

export function validationFailed(fields: FieldDetail[]): HttpError {
  return new HttpError('validation_failed', `invalid ${fields.map((f) => f.field).join(', ')}`, {
    details: fields,
  });
}
