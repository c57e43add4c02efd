// What every transport shares besides frames: publisher ids, the namespace rule, and its calls up
// to the cluster layer (made only on a change of state, logged, and shielded from a throwing handler).
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { TransportHandlers, TransportKind } from '../transport.ts';
import type { Counters } from './counters.ts';

/** A fresh id for one transport instance: its frames carry it, so receivers tell publishers apart. */
export function newPublisherId(): string {
  return randomBytes(9).toString('base64url');
}

const NAMESPACE = /^[A-Za-z0-9_-]{1,32}$/;

/** Throws on a namespace no engine could carry as is (a programming error, caught at construction). */
export function checkNamespace(namespace: string): string {
  if (!NAMESPACE.test(namespace))
    throw new Error(
      `bus namespace must be 1-32 characters of [A-Za-z0-9_-], got ${JSON.stringify(namespace)}`,
    );
  return namespace;
}

export function errorOf(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The transport's side of TransportHandlers: `down` once per loss (logged at warn), `up` once per
 * recovery (logged at info, counted as a reconnect), nothing after close(). A handler that throws
 * is logged at error and the transport carries on.
 */
export class Upcalls {
  readonly #log: Logger;
  readonly #counters: Counters;
  #handlers: TransportHandlers | undefined;
  #connected = false;
  #everUp = false;

  constructor(kind: TransportKind, log: Logger, counters: Counters) {
    this.#log = log.child({ part: 'bus', transport: kind });
    this.#counters = counters;
  }

  get log(): Logger {
    return this.#log;
  }

  get connected(): boolean {
    return this.#connected;
  }

  open(handlers: TransportHandlers): void {
    this.#handlers = handlers;
  }

  /** No handler is called after this. */
  close(): void {
    this.#handlers = undefined;
    this.#connected = false;
  }

  deliver(channel: string, messages: string[]): void {
    const h = this.#handlers;
    if (!h || messages.length === 0) return;
    this.#counters.messagesIn += messages.length;
    try {
      h.deliver(channel, messages);
    } catch (err) {
      this.#log.error({ err, channel }, 'bus deliver handler threw');
    }
  }

  /** The engine is reachable and every channel subscribed (the first time: no call, start() resolves). */
  up(): void {
    if (this.#connected) return;
    this.#connected = true;
    if (!this.#everUp) {
      this.#everUp = true;
      return;
    }
    this.#counters.reconnects++;
    this.#log.info('bus connection restored');
    const h = this.#handlers;
    if (!h) return;
    try {
      h.up();
    } catch (err) {
      this.#log.error({ err }, 'bus up handler threw');
    }
  }

  down(err: Error): void {
    if (!this.#connected) return;
    this.#connected = false;
    const h = this.#handlers;
    if (!h) return;
    this.#log.warn({ err }, 'bus connection lost');
    try {
      h.down(err);
    } catch (e) {
      this.#log.error({ err: e }, 'bus down handler threw');
    }
  }
}
