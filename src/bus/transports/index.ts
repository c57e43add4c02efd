// The transports' public face: a factory that picks an engine by kind, the default namespace of a
// database, and the adapters themselves (for tests and tools). The cluster layer imports only this.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { BusTransport, TransportKind } from '../transport.ts';
import { type MemoryBroker, MemoryTransport } from './memory.ts';
import { NatsTransport } from './nats.ts';
import { databaseIdentity, PostgresTransport } from './postgres.ts';
import { RedisTransport } from './redis.ts';

export { MemoryBroker, MemoryTransport, type MemoryTransportOptions } from './memory.ts';
export { NatsTransport, type NatsTransportOptions, natsSubject } from './nats.ts';
export {
  PG_MAX_FRAME_BYTES,
  PostgresTransport,
  type PostgresTransportOptions,
  pgChannelName,
} from './postgres.ts';
export { RedisTransport, type RedisTransportOptions, redisChannel } from './redis.ts';

export interface CreateTransportOptions {
  kind: TransportKind;
  /** Clusters sharing an engine hear each other only on the same namespace (see defaultNamespace). */
  namespace: string;
  /** postgres: the database taskwire uses. */
  databaseUrl?: string;
  /** nats: nats://host:port[,nats://...]. */
  natsUrl?: string;
  /** redis: redis://..., rediss://... or a unix socket path. */
  redisUrl?: string;
  /** memory: the broker shared by in-process nodes (a lone node gets its own). */
  broker?: MemoryBroker;
  log: Logger;
}

/** A transport of `kind`; throws when the URL that kind needs is missing. */
export function createTransport(opts: CreateTransportOptions): BusTransport {
  const { namespace, log } = opts;
  const need = (url: string | undefined, what: string): string => {
    if (!url) throw new Error(`bus: the ${opts.kind} transport needs ${what}`);
    return url;
  };
  switch (opts.kind) {
    case 'memory':
      return new MemoryTransport({ broker: opts.broker, namespace, log });
    case 'postgres':
      return new PostgresTransport({ databaseUrl: need(opts.databaseUrl, 'a database URL'), namespace, log });
    case 'nats':
      return new NatsTransport({ url: need(opts.natsUrl, 'a NATS URL'), namespace, log });
    case 'redis':
      return new RedisTransport({ url: need(opts.redisUrl, 'a Redis URL'), namespace, log });
    default:
      throw new Error(`bus: unknown transport kind ${JSON.stringify(opts.kind)}`);
  }
}

/**
 * A short stable namespace for the processes of one database: `tw` and 10 hex digits of a hash of
 * its host, port and name (never user or password; localhost, 127.0.0.1 and ::1 count as one host,
 * 5432 is the default port). Test clusters on different databases then never hear each other.
 */
export function defaultNamespace(databaseUrl: string): string {
  const { host, port, database } = databaseIdentity(databaseUrl);
  return `tw${createHash('sha256').update(`${host}:${port}/${database}`).digest('hex').slice(0, 10)}`;
}
