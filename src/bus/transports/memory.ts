// The in-process transport: several MemoryTransports sharing one MemoryBroker behave like nodes on
// one engine (asynchronous delivery, per-publisher order, the real frame format), with a switch
// to simulate an outage. For tests and a lone process; it must never be used across processes.
import type { Logger } from 'pino';
import type { BusTransport, TransportHandlers, TransportStats } from '../transport.ts';
import { checkNamespace, newPublisherId, Upcalls } from './common.ts';
import { Counters } from './counters.ts';
import { Inbox } from './inbox.ts';
import { Outbox, type OutFrame } from './outbox.ts';

interface Port {
  namespace: string;
  channels: Set<string>;
  receive(channel: string, data: string | Buffer): void;
  down(err: Error): void;
  up(): void;
}

interface Queued {
  namespace: string;
  channel: string;
  data: string | Buffer;
  from?: MemoryTransport;
}

/** The engine of in-process nodes: one FIFO queue, drained asynchronously, so order is per publisher. */
export class MemoryBroker {
  readonly #ports = new Map<MemoryTransport, Port>();
  readonly #cut = new Set<MemoryTransport>();
  /** Paused nodes, and what they sent and were sent meanwhile (delivered, in order, on resume). */
  readonly #paused = new Map<MemoryTransport, { sent: Queued[]; received: Queued[] }>();
  #queue: Queued[] = [];
  #scheduled = false;

  /** For MemoryTransport: connects a node. */
  attach(transport: MemoryTransport, port: Port): void {
    this.#ports.set(transport, port);
  }

  /** For MemoryTransport: disconnects a node for good. */
  detach(transport: MemoryTransport): void {
    this.#ports.delete(transport);
    this.#cut.delete(transport);
  }

  /** For MemoryTransport: an engine-level message from `from` (dropped while `from` is cut off). */
  send(namespace: string, channel: string, data: string | Buffer, from?: MemoryTransport): boolean {
    if (from && this.#cut.has(from)) return false;
    const held = from && this.#paused.get(from);
    if (held) {
      held.sent.push({ namespace, channel, data, from });
      return true;
    }
    this.#queue.push({ namespace, channel, data, from });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#drain);
    }
    return true;
  }

  /** Test hook: a forged engine message on a namespace's channel, from no transport. */
  inject(namespace: string, channel: string, data: string | Buffer): void {
    this.send(namespace, channel, data);
  }

  /** Test hook: `transport` loses the engine (it is told `down`); it hears and sends nothing until reconnect(). */
  disconnect(transport: MemoryTransport, err = new Error('memory bus: disconnected by a test')): void {
    const port = this.#ports.get(transport);
    if (!port || this.#cut.has(transport)) return;
    this.#cut.add(transport);
    setImmediate(() => port.down(err));
  }

  /** Test hook: the engine is back for `transport` (it is told `up`). */
  reconnect(transport: MemoryTransport): void {
    const port = this.#ports.get(transport);
    if (!port || !this.#cut.delete(transport)) return;
    setImmediate(() => {
      if (!this.#cut.has(transport)) port.up();
    });
  }

  /**
   * Test hook: `transport`'s node stops being heard and hearing, as a process paused by SIGSTOP
   * (its connection stays up; the engine keeps what was sent to it). resume() delivers it all.
   */
  pause(transport: MemoryTransport): void {
    if (!this.#paused.has(transport)) this.#paused.set(transport, { sent: [], received: [] });
  }

  resume(transport: MemoryTransport): void {
    const held = this.#paused.get(transport);
    if (!held) return;
    this.#paused.delete(transport);
    for (const item of held.sent) this.send(item.namespace, item.channel, item.data, item.from);
    const port = this.#ports.get(transport);
    if (port && held.received.length > 0)
      setImmediate(() => {
        for (const item of held.received)
          if (!this.#cut.has(transport)) port.receive(item.channel, item.data);
      });
  }

  readonly #drain = (): void => {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    for (const item of queue) {
      for (const [transport, port] of this.#ports) {
        if (this.#cut.has(transport)) continue;
        if (port.namespace !== item.namespace || !port.channels.has(item.channel)) continue;
        const held = this.#paused.get(transport);
        if (held) held.received.push(item);
        else port.receive(item.channel, item.data);
      }
    }
  };
}

export interface MemoryTransportOptions {
  /** Shared by the in-process nodes of one test cluster; a lone node gets its own. */
  broker?: MemoryBroker;
  namespace?: string;
  log: Logger;
  /** Frame size limit (default 64 KiB); larger messages travel in parts, as on NATS. */
  maxFrameBytes?: number;
}

export class MemoryTransport implements BusTransport {
  readonly kind = 'memory' as const;
  readonly broker: MemoryBroker;
  readonly #namespace: string;
  readonly #maxFrame: number;
  readonly #counters = new Counters();
  readonly #calls: Upcalls;
  readonly #outbox: Outbox;
  readonly #inbox: Inbox;
  #started = false;
  #stopping: Promise<void> | undefined;

  constructor(opts: MemoryTransportOptions) {
    this.broker = opts.broker ?? new MemoryBroker();
    this.#namespace = checkNamespace(opts.namespace ?? 'memory');
    this.#maxFrame = opts.maxFrameBytes ?? 64 * 1024;
    this.#calls = new Upcalls('memory', opts.log, this.#counters);
    this.#outbox = new Outbox({
      publisher: newPublisherId(),
      maxFrameBytes: () => this.#maxFrame,
      large: 'parts',
      send: (frames) => this.#send(frames),
    });
    this.#inbox = new Inbox({ counters: this.#counters, maxFrameBytes: () => this.#maxFrame });
  }

  get connected(): boolean {
    return this.#calls.connected;
  }

  async start(channels: string[], handlers: TransportHandlers): Promise<void> {
    if (this.#started || this.#stopping) throw new Error('bus (memory): start() may be called once');
    this.#started = true;
    this.#calls.open(handlers);
    this.broker.attach(this, {
      namespace: this.#namespace,
      channels: new Set(channels),
      receive: (channel, data) => {
        const got = this.#inbox.accept(channel, data);
        if (got && 'messages' in got) this.#calls.deliver(channel, got.messages);
        else if (got) this.#inbox.dropped(); // no references on this engine
      },
      down: (err) => {
        this.#counters.unsent += this.#outbox.clear();
        this.#calls.down(err);
      },
      up: () => this.#calls.up(),
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#calls.up();
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
      await this.#outbox.drain(1000);
      this.#calls.close();
      this.broker.detach(this);
    })();
    return this.#stopping;
  }

  #send(frames: OutFrame[]): void {
    for (const f of frames) {
      if (!this.broker.send(this.#namespace, f.channel, f.data, this)) {
        this.#counters.unsent += f.messages;
        continue;
      }
      this.#counters.framesOut++;
      this.#counters.bytesOut += f.bytes;
    }
  }
}
