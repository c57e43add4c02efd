// A dedicated connection that LISTENs on named channels and hands each notification to its
// handler; it reconnects with backoff when the database goes away, so signals resume by themselves.
import pg from 'pg';

export interface ListenerOptions {
  connectionString: string;
  channels: Record<string, (payload: string) => void>;
  onError?: (err: Error) => void;
}

export class Listener {
  readonly #o: ListenerOptions;
  #client: pg.Client | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #delay = 100;
  connected = false;

  constructor(opts: ListenerOptions) {
    this.#o = opts;
  }

  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#o.connectionString, keepAlive: true });
    this.#client = client;
    client.on('notification', (msg) => {
      const handler = this.#o.channels[msg.channel];
      if (handler) handler(msg.payload ?? '');
    });
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('listener connection ended')));
    try {
      await client.connect();
      for (const channel of Object.keys(this.#o.channels))
        await client.query(`listen ${pg.escapeIdentifier(channel)}`);
      this.connected = true;
      this.#delay = 100;
    } catch (err) {
      this.#lost(client, err as Error);
    }
  }

  #lost(client: pg.Client, err: Error): void {
    if (client !== this.#client) return;
    this.connected = false;
    this.#client = undefined;
    client.end().catch(() => {});
    if (this.#stopped) return;
    this.#o.onError?.(err);
    this.#retry = setTimeout(() => void this.#connect(), this.#delay);
    this.#retry.unref();
    this.#delay = Math.min(this.#delay * 2, 5000);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }
}
