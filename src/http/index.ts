// The http part's public face.
export { buildHttpApp, type HttpAppOptions } from './app.ts';
export { ERROR_STATUS, type ErrorBody, type ErrorCode, HttpError } from './errors.ts';
export { createMetrics, type MetricSources, type Metrics } from './metrics.ts';
export type { LongPollHandler } from './routes/socket.ts';
