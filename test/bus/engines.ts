// Private nats-server / redis-server processes for tests: the launcher lives in bench/lib (the bus
// benchmark measures the same processes); tests import it from here.
export {
  type EngineProcess,
  NATS_SERVER,
  REDIS_SERVER,
  startNatsServer,
  startRedisServer,
} from '../../bench/lib/engines.ts';
