// Builds the bus transport the configuration names (TASKWIRE_BUS): postgres, nats or redis, on the
// namespace of this database (processes on one database find each other; others never hear them).
// Only the configured transport loads, on first use, with its engine's client: a node on the
// postgres bus never loads ioredis or @nats-io/transport-node (a few MB of resident memory).
import type { Logger } from 'pino';
import type { BusTransport } from '../bus/index.ts';
import type { Config } from '../config/index.ts';

export async function createBusTransport(
  config: Config,
  databaseUrl: string,
  log: Logger,
): Promise<BusTransport> {
  const { createTransport, defaultNamespace } = await import('../bus/transports/factory.ts');
  return createTransport({
    kind: config.bus,
    namespace: config.busNamespace ?? defaultNamespace(databaseUrl),
    databaseUrl,
    natsUrl: config.natsUrl,
    redisUrl: config.redisUrl,
    log: log.child({ part: 'bus', transport: config.bus }),
  });
}
