// The PostgreSQL transport: LISTEN/NOTIFY on the database taskwire already uses, over its own
// connection (never the app's pool), one statement per flush, a message too large for a NOTIFY
// passed by reference (taskwire.bus_spill), reconnecting by itself. It must not hold a transaction open.
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { notifyFrames, pruneSpill, readSpill, spillAndNotify } from '../../db/index.ts';
import type { BusTransport, TransportHandlers, TransportStats } from '../transport.ts';
import { checkNamespace, errorOf, newPublisherId, Upcalls } from './common.ts';
import { Counters } from './counters.ts';
import { splitBody } from './frame.ts';
import { Inbox } from './inbox.ts';
import { Outbox, type OutFrame } from './outbox.ts';

/** PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; frames stay well below. */
export const PG_MAX_FRAME_BYTES = 7600;

export interface PostgresTransportOptions {
  databaseUrl: string;
  namespace: string;
  log: Logger;
  /** NOTIFY payload limit in bytes (default 7,600; at most 7,999). */
  maxFrameBytes?: number;
  /** Bound on connecting (and on each statement) before giving up (default 10 s). */
  connectTimeoutMs?: number;
  /** How long a message passed by reference stays readable (default 60 s); then it is pruned. */
  spillTtlMs?: number;
  /** The connection's application_name, by which pg_stat_activity shows it (default taskwire-bus). */
  applicationName?: string;
}

/**
 * The NOTIFY channel of a logical channel: `tw_<namespace>_<readable prefix>_<hash>`, ASCII and at
 * most 61 bytes (identifiers are cut at 63), whatever characters the logical name has.
 */
export function pgChannelName(namespace: string, channel: string): string {
  const hash = createHash('sha256').update(channel).digest('hex').slice(0, 12);
  const readable = channel.replace(/[^A-Za-z0-9]+/g, '_').slice(0, 12);
  return `tw_${namespace}_${readable}_${hash}`;
}

/** `host:port/database` of a connection string, never its password (for messages and namespaces). */
export function databaseIdentity(databaseUrl: string): { host: string; port: string; database: string } {
  try {
    const url = new URL(databaseUrl);
    const socketHost = url.searchParams.get('host');
    let host = decodeURIComponent(url.hostname || socketHost || 'localhost').toLowerCase();
    if (host === '127.0.0.1' || host === '[::1]' || host === '::1') host = 'localhost';
    const port = url.port || url.searchParams.get('port') || '5432';
    const database =
      decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username) || 'postgres';
    return { host, port, database };
  } catch {
    return { host: 'unknown', port: '', database: '' };
  }
}

/** A received frame waiting behind a reference being read, so that it cannot overtake it. */
type Held =
  | { channel: string; messages: string[] }
  | { channel: string; ref: string; count: number; body?: string | null };

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5000;

export class PostgresTransport implements BusTransport {
  readonly kind = 'postgres' as const;
  readonly #o: Required<PostgresTransportOptions>;
  readonly #counters = new Counters();
  readonly #calls: Upcalls;
  readonly #outbox: Outbox;
  readonly #inbox: Inbox;
  /** NOTIFY channel name -> logical name, for the subscribed channels. */
  readonly #listening = new Map<string, string>();
  /** Logical name -> NOTIFY channel name, for every channel published on. */
  readonly #names = new Map<string, string>();
  #client: pg.Client | undefined;
  #started = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #delay = RETRY_FIRST_MS;
  #held: Held[] = [];
  #reading = false;
  #lastPrune = 0;

  constructor(opts: PostgresTransportOptions) {
    const maxFrameBytes = Math.min(opts.maxFrameBytes ?? PG_MAX_FRAME_BYTES, 7999);
    this.#o = {
      connectTimeoutMs: 10_000,
      spillTtlMs: 60_000,
      applicationName: 'taskwire-bus',
      ...opts,
      maxFrameBytes,
      namespace: checkNamespace(opts.namespace),
    };
    this.#calls = new Upcalls('postgres', opts.log, this.#counters);
    this.#outbox = new Outbox({
      publisher: newPublisherId(),
      maxFrameBytes: () => maxFrameBytes,
      large: 'reference',
      send: (frames) => this.#send(frames),
    });
    this.#inbox = new Inbox({ counters: this.#counters, maxFrameBytes: () => maxFrameBytes });
  }

  get connected(): boolean {
    return this.#calls.connected;
  }

  async start(channels: string[], handlers: TransportHandlers): Promise<void> {
    if (this.#started || this.#stopping) throw new Error('bus (postgres): start() may be called once');
    this.#started = true;
    for (const c of channels) this.#listening.set(this.#name(c), c);
    this.#calls.open(handlers);
    try {
      await this.#connect();
    } catch (err) {
      this.#calls.close();
      const { host, port, database } = databaseIdentity(this.#o.databaseUrl);
      throw new Error(
        `bus (postgres): cannot LISTEN on ${host}:${port}/${database} within ${this.#o.connectTimeoutMs} ms: ${errorOf(err).message}`,
        { cause: err },
      );
    }
    if (this.#client) this.#prune(this.#client);
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
      if (this.#client) await this.#outbox.drain(2000);
      this.#stopped = true;
      clearTimeout(this.#retry);
      this.#calls.close();
      this.#outbox.clear();
      const client = this.#client;
      this.#client = undefined;
      await client?.end().catch(() => {});
    })();
    return this.#stopping;
  }

  #name(channel: string): string {
    let name = this.#names.get(channel);
    if (name === undefined) {
      if (this.#names.size >= 10_000) this.#names.clear();
      name = pgChannelName(this.#o.namespace, channel);
      this.#names.set(channel, name);
    }
    return name;
  }

  /** Opens a connection and LISTENs on every channel; the transport is up once it resolves. */
  async #connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#o.databaseUrl,
      application_name: this.#o.applicationName,
      connectionTimeoutMillis: this.#o.connectTimeoutMs,
      query_timeout: this.#o.connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
    });
    // Until LISTEN succeeded, failures surface through the promises below, not through #lost.
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('bus connection to PostgreSQL ended')));
    client.on('notification', (n) => {
      if (client === this.#client) this.#receive(n.channel, n.payload ?? '');
    });
    try {
      await client.connect();
      // A NOTIFY commits a transaction (with an xid): waiting for its WAL flush buys nothing for
      // an at-most-once bus, so this session commits asynchronously. Then LISTEN on every channel.
      const setup = ['set synchronous_commit = off'];
      for (const n of this.#listening.keys()) setup.push(`listen ${pg.escapeIdentifier(n)}`);
      await client.query(setup.join('; '));
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.#stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#delay = RETRY_FIRST_MS;
    this.#calls.up();
  }

  #lost(client: pg.Client, err: Error): void {
    if (client !== this.#client) return;
    this.#client = undefined;
    client.end().catch(() => {});
    this.#counters.unsent += this.#outbox.clear();
    if (this.#stopped) return;
    this.#calls.down(err);
    this.#reconnectLater();
  }

  #reconnectLater(): void {
    if (this.#stopped) return;
    const wait = this.#delay / 2 + Math.random() * (this.#delay / 2);
    this.#delay = Math.min(this.#delay * 2, RETRY_MAX_MS);
    this.#retry = setTimeout(() => {
      this.#connect().catch((err: unknown) => {
        this.#calls.log.debug({ err }, 'bus reconnect attempt failed');
        this.#reconnectLater();
      });
    }, wait);
    this.#retry.unref();
  }

  async #send(frames: OutFrame[]): Promise<void> {
    let messages = 0;
    let bytes = 0;
    const channels: string[] = [];
    const payloads: string[] = [];
    const refs: string[] = [];
    const bodies: string[] = [];
    for (const f of frames) {
      messages += f.messages;
      bytes += f.bytes;
      channels.push(this.#name(f.channel));
      payloads.push(f.data as string);
      if (f.spill) {
        refs.push(f.spill.ref);
        bodies.push(f.spill.body);
      }
    }
    const client = this.#client;
    if (!client) {
      this.#counters.unsent += messages;
      return;
    }
    try {
      if (refs.length > 0) await spillAndNotify(client, refs, bodies, channels, payloads);
      else await notifyFrames(client, channels, payloads);
      this.#counters.framesOut += frames.length;
      this.#counters.bytesOut += bytes;
    } catch (err) {
      this.#counters.unsent += messages;
      this.#failed(client, err);
    }
    if (refs.length > 0) this.#prune(client);
  }

  /** A statement failed: a timed-out connection is treated as lost, anything else is logged. */
  #failed(client: pg.Client, err: unknown): void {
    if (client !== this.#client) return;
    const e = errorOf(err);
    if (/timeout/i.test(e.message)) this.#lost(client, e);
    else this.#calls.log.error({ err: e }, 'bus statement failed');
  }

  #prune(client: pg.Client): void {
    const now = Date.now();
    if (now - this.#lastPrune < this.#o.spillTtlMs / 2) return;
    this.#lastPrune = now;
    pruneSpill(client, this.#o.spillTtlMs).catch((err: unknown) => this.#failed(client, err));
  }

  #receive(name: string, payload: string): void {
    const channel = this.#listening.get(name);
    if (channel === undefined) return;
    const got = this.#inbox.accept(channel, payload);
    if (!got) return;
    if ('messages' in got && this.#held.length === 0) {
      this.#calls.deliver(channel, got.messages);
      return;
    }
    this.#held.push({ channel, ...got });
    if (!this.#reading) void this.#readHeld();
  }

  /** Reads the references held frames point at, and delivers everything held in arrival order. */
  async #readHeld(): Promise<void> {
    this.#reading = true;
    try {
      while (this.#held.length > 0) {
        const wanted = this.#held.flatMap((h) => ('ref' in h && h.body === undefined ? [h.ref] : []));
        if (wanted.length > 0) {
          const client = this.#client;
          let found = new Map<string, string>();
          if (client) {
            try {
              found = await readSpill(client, wanted);
            } catch (err) {
              this.#failed(client, err);
            }
          }
          const asked = new Set(wanted);
          for (const h of this.#held)
            if ('ref' in h && h.body === undefined && asked.has(h.ref)) h.body = found.get(h.ref) ?? null;
        }
        while (this.#held.length > 0) {
          const h = this.#held[0];
          if ('ref' in h) {
            if (h.body === undefined) break;
            const messages = h.body === null ? undefined : splitBody(h.body, h.count);
            if (messages) this.#calls.deliver(h.channel, messages);
            else this.#inbox.dropped();
          } else {
            this.#calls.deliver(h.channel, h.messages);
          }
          this.#held.shift();
        }
      }
    } finally {
      this.#reading = false;
    }
  }
}
