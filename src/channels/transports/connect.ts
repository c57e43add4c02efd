// What both transports check before a session exists (Phoenix's socket/transport.ex): Plug query
// rules, origin allow-list, per-user quota, quiet refusal logs. Must not know frames or topics.
import type { Logger } from 'pino';
import type { Identity, OriginPolicy } from '../../auth/index.ts';
import type { Session, Transport } from '../session.ts';

/** A query value: a plain string, or NOT_STRING for `k[]=..`/`k[x]=..` (Plug makes those a list or map). */
export const NOT_STRING = Symbol('not a string');
export type QueryValue = string | typeof NOT_STRING;

/** Every value given for `name`, in order (Plug: the last one wins when a key repeats). */
export function queryValues(search: URLSearchParams, name: string): QueryValue[] {
  const values: QueryValue[] = [];
  const nested = `${name}[`;
  for (const [key, value] of search) {
    if (key === name) values.push(value);
    else if (key.startsWith(nested)) values.push(NOT_STRING);
  }
  return values;
}

/** Plug's view of a query param: the last value, undefined when absent, null when not a string. */
export function lastQueryValue(search: URLSearchParams, name: string): string | null | undefined {
  const values = queryValues(search, name);
  if (values.length === 0) return undefined;
  const last = values[values.length - 1];
  return last === NOT_STRING ? null : last;
}

/** Sockets (WebSocket and LongPoll sessions) held per user. */
export class SocketQuota {
  readonly #max: number;
  readonly #held = new Map<string, number>();

  constructor(max: number) {
    this.#max = max;
  }

  take(userId: string): boolean {
    const n = this.#held.get(userId) ?? 0;
    if (n >= this.#max) return false;
    this.#held.set(userId, n + 1);
    return true;
  }

  give(userId: string): void {
    const n = (this.#held.get(userId) ?? 1) - 1;
    if (n <= 0) this.#held.delete(userId);
    else this.#held.set(userId, n);
  }
}

/**
 * Refused clients reconnect forever (every 5 s), so refusals are logged at most `perWindow`
 * times per window, then summed up once.
 */
export class RefusalLog {
  readonly #log: Logger;
  readonly #perWindow: number;
  readonly #windowMs: number;
  #windowStart = 0;
  #count = 0;
  #suppressed = 0;

  constructor(log: Logger, perWindow = 10, windowMs = 10_000) {
    this.#log = log;
    this.#perWindow = perWindow;
    this.#windowMs = windowMs;
  }

  refused(transport: string, status: number, reason: string): void {
    const now = Date.now();
    if (now - this.#windowStart >= this.#windowMs) {
      if (this.#suppressed > 0)
        this.#log.info({ suppressed: this.#suppressed }, 'more socket connects refused');
      this.#windowStart = now;
      this.#count = 0;
      this.#suppressed = 0;
    }
    if (this.#count < this.#perWindow) {
      this.#count += 1;
      this.#log.info({ transport, status, reason }, 'socket connect refused');
    } else {
      this.#suppressed += 1;
    }
  }
}

/** What a transport needs from the rest of channels to open a session. */
export interface SocketEndpoint {
  readonly origins: OriginPolicy;
  readonly quota: SocketQuota;
  readonly refusals: RefusalLog;
  /** Who a valid connect token speaks for (user id, admin), else undefined. */
  authenticate(token: string | undefined): Promise<Identity | undefined>;
  openSession(principal: Identity, transport: Transport): Session;
  readonly log: Logger;
}
