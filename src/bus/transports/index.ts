// The transports' public face: a factory that picks an engine by kind (loading only that one),
// the default namespace of a database, and the adapters themselves (for tests and tools; importing
// this module loads every engine's client, so the server goes through factory.ts).
export { type CreateTransportOptions, createTransport, defaultNamespace } from './factory.ts';
export { MemoryBroker, MemoryTransport, type MemoryTransportOptions } from './memory.ts';
export { NatsTransport, type NatsTransportOptions, natsSubject } from './nats.ts';
export {
  PG_MAX_FRAME_BYTES,
  PostgresTransport,
  type PostgresTransportOptions,
  pgChannelName,
} from './postgres.ts';
export { RedisTransport, type RedisTransportOptions, redisChannel } from './redis.ts';
