// Builds the bus transport the configuration names (TASKWIRE_BUS): postgres, nats or redis.
import type { Logger } from 'pino';
import type { BusTransport } from '../bus/index.ts';
import type { Config } from '../config/index.ts';

export async function createBusTransport(
  config: Config,
  _databaseUrl: string,
  _log: Logger,
): Promise<BusTransport> {
  throw new Error(`TASKWIRE_BUS=${config.bus}: transport not wired yet`);
}
