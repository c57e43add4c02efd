// The NATS transport (core NATS pub/sub through @nats-io/transport-node): subjects
// `<namespace>.<escaped channel>`, frames packed up to the server's max_payload, larger messages
// split into parts; the client reconnects and re-subscribes by itself, its status becomes down/up.
// It must not use JetStream: the bus is at-most-once and the cluster layer knows it.
import { createHash } from 'node:crypto';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { BusTransport, TransportHandlers, TransportStats } from '../transport.ts';
import { checkNamespace, errorOf, newPublisherId, Upcalls } from './common.ts';
import { Counters } from './counters.ts';
import { Inbox } from './inbox.ts';
import { Outbox, type OutFrame } from './outbox.ts';

export interface NatsTransportOptions {
  /** nats://host:port, or several separated by commas (a cluster). */
  url: string;
  namespace: string;
  log: Logger;
  /** A frame limit below the server's max_payload (default: max_payload itself, read on each connect). */
  maxFrameBytes?: number;
  /** Bound on the first connection (default 10 s); later the client retries forever. */
  connectTimeoutMs?: number;
  /** Client name shown by the server's monitoring (default taskwire-bus). */
  name?: string;
}

/** NATS's own default max_payload, used until the server has said its own. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/**
 * The subject of a logical channel: one token after the namespace, every byte outside
 * [A-Za-z0-9-] written as `_xx` (so `_` too), hence distinct channels get distinct subjects and
 * none has a wildcard, a space or an empty token. Very long names become `<ns>.h.<hash>`.
 */
export function natsSubject(namespace: string, channel: string): string {
  let token = '';
  for (const byte of Buffer.from(channel, 'utf8')) {
    const safe =
      (byte >= 0x30 && byte <= 0x39) ||
      (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) ||
      byte === 0x2d;
    token += safe ? String.fromCharCode(byte) : `_${byte.toString(16).padStart(2, '0')}`;
  }
  if (token.length === 0) token = '_';
  if (token.length > 200) return `${namespace}.h.${createHash('sha256').update(channel).digest('hex')}`;
  return `${namespace}.${token}`;
}

export class NatsTransport implements BusTransport {
  readonly kind = 'nats' as const;
  readonly #o: NatsTransportOptions & { connectTimeoutMs: number; name: string };
  readonly #counters = new Counters();
  readonly #calls: Upcalls;
  readonly #outbox: Outbox;
  readonly #inbox: Inbox;
  readonly #subjects = new Map<string, string>();
  #channels: string[] = [];
  #nc: NatsConnection | undefined;
  /** Bumped at each loss, so a late "subscriptions confirmed" of an older connection is ignored. */
  #epoch = 0;
  #started = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;

  constructor(opts: NatsTransportOptions) {
    this.#o = {
      connectTimeoutMs: 10_000,
      name: 'taskwire-bus',
      ...opts,
      namespace: checkNamespace(opts.namespace),
    };
    this.#calls = new Upcalls('nats', opts.log, this.#counters);
    this.#outbox = new Outbox({
      publisher: newPublisherId(),
      maxFrameBytes: () => this.#maxFrame(),
      large: 'parts',
      send: (frames) => this.#send(frames),
    });
    this.#inbox = new Inbox({ counters: this.#counters, maxFrameBytes: () => this.#maxFrame() });
  }

  get connected(): boolean {
    return this.#calls.connected;
  }

  async start(channels: string[], handlers: TransportHandlers): Promise<void> {
    if (this.#started || this.#stopping) throw new Error('bus (nats): start() may be called once');
    this.#started = true;
    this.#channels = [...new Set(channels)];
    this.#calls.open(handlers);
    try {
      await this.#open();
    } catch (err) {
      this.#calls.close();
      throw new Error(
        `bus (nats): cannot connect to ${this.#o.url} within ${this.#o.connectTimeoutMs} ms: ${errorOf(err).message}`,
        { cause: err },
      );
    }
  }

  publish(channel: string, messages: string[]): void {
    this.#counters.messagesOut += messages.length;
    if (!this.#calls.connected) {
      this.#counters.unsent += messages.length;
      return;
    }
    this.#counters.unsent += this.#outbox.push(channel, messages);
  }

  stats(): TransportStats {
    return this.#counters.snapshot();
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#outbox.drain(2000);
      this.#stopped = true;
      clearTimeout(this.#retry);
      this.#calls.close();
      const nc = this.#nc;
      this.#nc = undefined;
      if (!nc || nc.isClosed()) return;
      // drain() sends what the client still buffers, then closes; bounded, then plain close().
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        nc.drain().catch(() => {}),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 2000);
        }),
      ]);
      clearTimeout(timer);
      if (!nc.isClosed()) await nc.close().catch(() => {});
    })();
    return this.#stopping;
  }

  #subject(channel: string): string {
    let s = this.#subjects.get(channel);
    if (s === undefined) {
      if (this.#subjects.size >= 10_000) this.#subjects.clear();
      s = natsSubject(this.#o.namespace, channel);
      this.#subjects.set(channel, s);
    }
    return s;
  }

  #maxFrame(): number {
    const server = this.#nc?.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    return Math.min(server, this.#o.maxFrameBytes ?? server);
  }

  /** Connects, subscribes every channel and waits for the server to have them: then up. */
  async #open(): Promise<void> {
    const nc = await connect({
      servers: this.#o.url.split(',').map((s) => s.trim()),
      name: this.#o.name,
      timeout: this.#o.connectTimeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      pingInterval: 10_000,
      maxPingOut: 2,
    });
    if (this.#stopped) {
      await nc.close().catch(() => {});
      return;
    }
    for (const channel of this.#channels) {
      nc.subscribe(this.#subject(channel), {
        callback: (err: Error | null, msg: Msg) => {
          if (err || nc !== this.#nc) return;
          this.#receive(channel, msg.data);
        },
      });
    }
    this.#nc = nc;
    void this.#watch(nc);
    try {
      await nc.flush();
    } catch (err) {
      this.#nc = undefined;
      await nc.close().catch(() => {});
      throw err;
    }
    this.#calls.up();
  }

  /** Turns the client's status events into down/up; a connection closed under us is replaced. */
  async #watch(nc: NatsConnection): Promise<void> {
    void nc.closed().then((err) => {
      if (nc !== this.#nc || this.#stopped) return;
      this.#nc = undefined;
      this.#lost(err instanceof Error ? err : new Error('NATS connection closed'));
      this.#reopenLater(250);
    });
    for await (const s of nc.status()) {
      if (nc !== this.#nc || this.#stopped) return;
      if (s.type === 'disconnect') {
        this.#lost(new Error(`lost the NATS server ${s.server}`));
      } else if (s.type === 'reconnect') {
        // The client re-sent every SUB on the new connection; a round trip confirms the server has them.
        const epoch = this.#epoch;
        nc.flush().then(
          () => {
            if (epoch === this.#epoch && nc === this.#nc && !this.#stopped) this.#calls.up();
          },
          () => {},
        );
      } else if (s.type === 'error' || s.type === 'slowConsumer') {
        this.#calls.log.warn({ status: s.type, err: 'error' in s ? s.error : undefined }, 'bus NATS status');
      }
    }
  }

  #lost(err: Error): void {
    this.#epoch++;
    this.#counters.unsent += this.#outbox.clear();
    this.#calls.down(err);
  }

  #reopenLater(delay: number): void {
    if (this.#stopped) return;
    this.#retry = setTimeout(() => {
      this.#open().catch((err: unknown) => {
        this.#calls.log.debug({ err }, 'bus reconnect attempt failed');
        this.#reopenLater(Math.min(delay * 2, 5000));
      });
    }, delay);
    this.#retry.unref();
  }

  #send(frames: OutFrame[]): void {
    const nc = this.#nc;
    for (const f of frames) {
      try {
        if (!nc || !this.#calls.connected) throw new Error('not connected');
        nc.publish(this.#subject(f.channel), f.data);
        this.#counters.framesOut++;
        this.#counters.bytesOut += f.bytes;
      } catch {
        this.#counters.unsent += f.messages;
      }
    }
  }

  #receive(channel: string, data: Uint8Array): void {
    const got = this.#inbox.accept(channel, data);
    if (!got) return;
    if ('messages' in got) this.#calls.deliver(channel, got.messages);
    else this.#inbox.dropped(); // references are a PostgreSQL thing: a forged frame here
  }
}
