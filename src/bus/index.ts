// The bus part's public face: topic-keyed broadcast across nodes (PubSub), the cluster protocol,
// and the transports (memory, postgres, nats, redis) behind one interface.
export {
  BusUnavailableError,
  Cluster,
  type ClusterOptions,
  type ClusterStats,
  RequestTimeoutError,
} from './cluster.ts';
export { type DeliveryClass, type TopicEvent, type TopicSubscriber, topicEvent } from './event.ts';
export { PubSub, type PubSubOptions } from './pubsub.ts';
export type { BusTransport, TransportHandlers, TransportKind, TransportStats } from './transport.ts';
