// Builds the transport of a kind, loading only that kind's adapter and its engine client: a node
// on the postgres bus (the default with a database) never loads ioredis or the NATS client.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { BusTransport, TransportKind } from '../transport.ts';
import type { MemoryBroker } from './memory.ts';
import { databaseIdentity } from './postgres.ts';

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

/** A transport of `kind`; rejects when the URL that kind needs is missing. */
export async function createTransport(opts: CreateTransportOptions): Promise<BusTransport> {
  const { namespace, log } = opts;
  const need = (url: string | undefined, what: string): string => {
    if (!url) throw new Error(`bus: the ${opts.kind} transport needs ${what}`);
    return url;
  };
  switch (opts.kind) {
    case 'memory': {
      const { MemoryTransport } = await import('./memory.ts');
      return new MemoryTransport({ broker: opts.broker, namespace, log });
    }
    case 'postgres': {
      const { PostgresTransport } = await import('./postgres.ts');
      return new PostgresTransport({ databaseUrl: need(opts.databaseUrl, 'a database URL'), namespace, log });
    }
    case 'nats': {
      const url = need(opts.natsUrl, 'a NATS URL');
      const { NatsTransport } = await import('./nats.ts');
      return new NatsTransport({ url, namespace, log });
    }
    case 'redis': {
      const url = need(opts.redisUrl, 'a Redis URL');
      const { RedisTransport } = await import('./redis.ts');
      return new RedisTransport({ url, namespace, log });
    }
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
