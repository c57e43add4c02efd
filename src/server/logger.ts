// The process logger: pino JSON lines (pretty when asked), with tokens redacted from URLs and
// authorization headers never logged.
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { Config } from '../config/index.ts';

/** Replaces the value of every `token` query parameter (JWTs and LongPoll session tokens). */
export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[REDACTED]');
}

export function createLogger(
  config: Pick<Config, 'logLevel' | 'logPretty'>,
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    redact: {
      paths: ['req.headers.authorization', 'req.headers["sec-websocket-protocol"]', 'token'],
      censor: '[REDACTED]',
    },
    serializers: {
      req(req: { method?: string; url?: string; id?: string; ip?: string }) {
        return { id: req.id, method: req.method, url: req.url ? redactUrl(req.url) : undefined, ip: req.ip };
      },
      err: pino.stdSerializers.err,
    },
  };
  if (destination) return pino(options, destination);
  if (config.logPretty) {
    // A stream in this thread rather than pino's worker-thread transport: pretty lines are for a
    // person at a terminal, and the transport would need pino's worker files on disk, which the
    // bundled server (dist/bundle) does not keep. Loaded only when asked for.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    return pino(options, pretty({ colorize: true, translateTime: 'HH:MM:ss.l', sync: true }));
  }
  return pino(options);
}
