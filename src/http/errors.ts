// Every HTTP error taskwire answers, in one place: api.md's codes, their statuses, and the body
// shape {"error": {"code", "message", ...details}}. No route invents its own; no stack leaves.
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  rate_limited: 429,
  header_too_large: 431,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; [detail: string]: unknown };
}

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

export interface FieldDetail {
  field: string;
  message: string;
}

export function validationFailed(fields: FieldDetail[]): HttpError {
  return new HttpError('validation_failed', `invalid ${fields.map((f) => f.field).join(', ')}`, {
    details: fields,
  });
}
