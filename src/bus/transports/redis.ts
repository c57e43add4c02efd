// The Redis transport (pub/sub through ioredis): a dedicated subscriber connection and a publisher
// connection, channels `<namespace>:<channel>`, one pipeline per flush, messages larger than a
// frame in parts; ioredis reconnects by itself and the channels are subscribed again before `up`.
// It must not use keys or streams: the bus is at-most-once and the cluster layer knows it.
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { BusTransport, TransportHandlers, TransportStats } from '../transport.ts';
import { checkNamespace, errorOf, newPublisherId, Upcalls } from './common.ts';
import { Counters } from './counters.ts';
import { Inbox } from './inbox.ts';
import { Outbox, type OutFrame } from './outbox.ts';

export interface RedisTransportOptions {
  /** redis://[user:pass@]host:port[/db], rediss://..., or the path of a unix socket. */
  url: string;
  namespace: string;
  log: Logger;
  /** Frame size limit in bytes (default 1 MiB, like NATS's default); larger messages go in parts. */
  maxFrameBytes?: number;
  /** Bound on the first connection (default 10 s); later ioredis retries forever. */
  connectTimeoutMs?: number;
  /** Prefix of the two connections' CLIENT SETNAME (default taskwire-bus: -pub and -sub). */
  name?: string;
}

/** The Redis channel of a logical channel (Redis channel names are binary-safe). */
export function redisChannel(namespace: string, channel: string): string {
  return `${namespace}:${channel}`;
}

export class RedisTransport implements BusTransport {
  readonly kind = 'redis' as const;
  readonly #o: RedisTransportOptions & { maxFrameBytes: number; connectTimeoutMs: number; name: string };
  readonly #counters = new Counters();
  readonly #calls: Upcalls;
  readonly #outbox: Outbox;
  readonly #inbox: Inbox;
  /** Redis channel -> logical channel, for the subscribed channels. */
  readonly #subscribed = new Map<string, string>();
  #pub: Redis | undefined;
  #sub: Redis | undefined;
  /** start() waiting for the first `up`. */
  readonly #whenUp: Array<() => void> = [];
  #pubReady = false;
  #subReady = false;
  #started = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  constructor(opts: RedisTransportOptions) {
    this.#o = {
      maxFrameBytes: 1024 * 1024,
      connectTimeoutMs: 10_000,
      name: 'taskwire-bus',
      ...opts,
      namespace: checkNamespace(opts.namespace),
    };
    this.#calls = new Upcalls('redis', opts.log, this.#counters);
    this.#outbox = new Outbox({
      publisher: newPublisherId(),
      maxFrameBytes: () => this.#o.maxFrameBytes,
      large: 'parts',
      send: (frames) => this.#send(frames),
    });
    this.#inbox = new Inbox({ counters: this.#counters, maxFrameBytes: () => this.#o.maxFrameBytes });
  }

  get connected(): boolean {
    return this.#calls.connected;
  }

  async start(channels: string[], handlers: TransportHandlers): Promise<void> {
    if (this.#started || this.#stopping) throw new Error('bus (redis): start() may be called once');
    this.#started = true;
    for (const c of channels) this.#subscribed.set(redisChannel(this.#o.namespace, c), c);
    this.#calls.open(handlers);
    const pub = this.#connection('pub');
    const sub = this.#connection('sub');
    this.#pub = pub;
    this.#sub = sub;
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#receive(channel, message));
    pub.on('ready', () => {
      this.#pubReady = true;
      this.#maybeUp();
    });
    sub.on('ready', () => void this.#subscribe(sub));
    for (const c of [pub, sub]) c.on('close', () => this.#lost(c));
    const ready = Promise.all([pub.connect(), sub.connect()]).then(() =>
      this.#calls.connected ? undefined : new Promise<void>((resolve) => this.#whenUp.push(resolve)),
    );
    // After a timeout the connection attempts still settle: never as an unhandled rejection.
    ready.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), this.#o.connectTimeoutMs);
        }),
      ]);
    } catch (err) {
      this.#stopped = true;
      this.#calls.close();
      pub.disconnect();
      sub.disconnect();
      throw new Error(
        `bus (redis): cannot connect to ${describe(this.#o.url)} within ${this.#o.connectTimeoutMs} ms: ${errorOf(err).message}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
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
      this.#calls.close();
      for (const c of [this.#pub, this.#sub]) {
        if (!c) continue;
        // QUIT is answered after every command before it; disconnect() ends retries whatever happens.
        await c.quit().catch(() => {});
        c.disconnect();
      }
    })();
    return this.#stopping;
  }

  #connection(role: 'pub' | 'sub'): Redis {
    const options: RedisOptions = {
      lazyConnect: true,
      connectionName: `${this.#o.name}-${role}`,
      connectTimeout: this.#o.connectTimeoutMs,
      // Nothing waits for a connection that is away: the bus drops (the cluster layer was told down).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // The transport subscribes itself on each 'ready', so that `up` follows the SUBSCRIBE's reply.
      autoResubscribe: false,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 2000),
    };
    const c = this.#o.url.startsWith('/')
      ? new Redis({ ...options, path: this.#o.url })
      : new Redis(this.#o.url, options);
    c.on('error', (err: Error) => this.#calls.log.debug({ err, role }, 'bus redis connection error'));
    return c;
  }

  async #subscribe(sub: Redis): Promise<void> {
    try {
      if (this.#subscribed.size > 0) await sub.subscribe(...this.#subscribed.keys());
      if (sub.status !== 'ready' || this.#stopped) return;
      this.#subReady = true;
      this.#maybeUp();
    } catch (err) {
      // The connection went away meanwhile: its 'close' and the next 'ready' take it from here.
      this.#calls.log.debug({ err }, 'bus redis subscribe failed');
    }
  }

  #maybeUp(): void {
    if (!this.#pubReady || !this.#subReady || this.#stopped) return;
    this.#calls.up();
    for (const resolve of this.#whenUp.splice(0)) resolve();
  }

  #lost(c: Redis): void {
    if (c === this.#pub) this.#pubReady = false;
    else this.#subReady = false;
    if (this.#stopped) return;
    this.#counters.unsent += this.#outbox.clear();
    this.#calls.down(new Error(`lost the Redis ${c === this.#pub ? 'publisher' : 'subscriber'} connection`));
  }

  #send(frames: OutFrame[]): Promise<void> | undefined {
    const pub = this.#pub;
    if (!pub || !this.#pubReady) {
      for (const f of frames) this.#counters.unsent += f.messages;
      return undefined;
    }
    if (frames.length === 1) {
      // The common case at moderate rates: one frame per flush needs no pipeline object.
      const [f] = frames;
      return pub.publish(redisChannel(this.#o.namespace, f.channel), f.data).then(
        () => {
          this.#counters.framesOut++;
          this.#counters.bytesOut += f.bytes;
        },
        () => {
          this.#counters.unsent += f.messages;
        },
      );
    }
    const pipeline = pub.pipeline();
    for (const f of frames) pipeline.publish(redisChannel(this.#o.namespace, f.channel), f.data);
    return pipeline.exec().then(
      (results) => {
        frames.forEach((f, i) => {
          if (results?.[i]?.[0]) {
            this.#counters.unsent += f.messages;
          } else {
            this.#counters.framesOut++;
            this.#counters.bytesOut += f.bytes;
          }
        });
      },
      () => {
        for (const f of frames) this.#counters.unsent += f.messages;
      },
    );
  }

  #receive(rawChannel: Buffer, data: Buffer): void {
    const channel = this.#subscribed.get(rawChannel.toString('utf8'));
    if (channel === undefined) return;
    const got = this.#inbox.accept(channel, data);
    if (!got) return;
    if ('messages' in got) this.#calls.deliver(channel, got.messages);
    else this.#inbox.dropped(); // references are a PostgreSQL thing: a forged frame here
  }
}

/** The URL without its password, for messages. */
function describe(url: string): string {
  if (url.startsWith('/')) return url;
  try {
    const u = new URL(url);
    u.password = '';
    u.username = '';
    return u.toString();
  } catch {
    return 'the configured Redis';
  }
}
