// Builds the bus transport the configuration names (TASKWIRE_BUS): postgres, nats or redis, on the
// namespace of this database (processes on one database find each other; others never hear them).
import type { Logger } from 'pino';
import type { BusTransport } from '../bus/index.ts';
import { createTransport, defaultNamespace } from '../bus/transports/index.ts';
import type { Config } from '../config/index.ts';

export function createBusTransport(config: Config, databaseUrl: string, log: Logger): BusTransport {
  return createTransport({
    kind: config.bus,
    namespace: config.busNamespace ?? defaultNamespace(databaseUrl),
    databaseUrl,
    natsUrl: config.natsUrl,
    redisUrl: config.redisUrl,
    log: log.child({ part: 'bus', transport: config.bus }),
  });
}
