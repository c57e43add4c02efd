// The publishing side shared by every transport: queues what is published in one event-loop turn,
// then packs it per channel into as few frames as the engine's size limit allows (a message too
// large for one frame goes in parts or by reference) and hands them to the engine in one call.
// It never touches the engine itself and never calls back into the caller synchronously.
import { HEADER_RESERVE, messagesFrame, partFrame, refFrame } from './frame.ts';

export interface OutFrame {
  /** Logical channel name. */
  channel: string;
  data: string | Buffer;
  /** Size of `data` in bytes (UTF-8). */
  bytes: number;
  /** Messages this frame completes (a part that is not the last completes none). */
  messages: number;
  /** A message too large for a frame, to be stored under `ref` before `data` (which points at it) is sent. */
  spill?: { ref: string; body: string };
}

export interface OutboxOptions {
  publisher: string;
  /** The largest frame the engine takes, in bytes; read at every flush (it may change on reconnect). */
  maxFrameBytes(): number;
  /** How a message larger than one frame travels: split in parts, or stored and referenced. */
  large: 'parts' | 'reference';
  /**
   * Hands one flush's frames, in order, to the engine. A returned promise holds back the next
   * flush until it settles (what is published meanwhile is packed into that next flush); it must
   * not reject.
   */
  send(frames: OutFrame[]): void | Promise<void>;
  /** Messages queued at most while a send is in flight (default 200,000); past it push() refuses. */
  maxQueued?: number;
}

/**
 * Messages queued that are sent at once rather than at the end of the loop turn: a burst
 * published in one turn then leaves in chunks while the rest is still being produced, so the
 * receiving node starts on the first chunk instead of waiting for the whole burst.
 */
const FLUSH_AT = 256;

export class Outbox {
  readonly #o: OutboxOptions;
  #pending = new Map<string, string[]>();
  #queued = 0;
  readonly #seq = new Map<string, number>();
  #refs = 0;
  #scheduled = false;
  #inflight: Promise<void> | undefined;

  constructor(opts: OutboxOptions) {
    this.#o = opts;
  }

  /** Messages waiting for the next flush. */
  get queued(): number {
    return this.#queued;
  }

  /** Queues messages for the next flush; returns how many it refused (the queue is full). */
  push(channel: string, messages: string[]): number {
    if (messages.length === 0) return 0;
    const room = (this.#o.maxQueued ?? 200_000) - this.#queued;
    if (room < messages.length) {
      if (room <= 0) return messages.length;
      return this.push(channel, messages.slice(0, room)) + messages.length - room;
    }
    let queue = this.#pending.get(channel);
    if (!queue) {
      queue = [];
      this.#pending.set(channel, queue);
    }
    for (const m of messages) queue.push(m);
    this.#queued += messages.length;
    if (this.#queued >= FLUSH_AT && !this.#inflight) {
      this.#flush();
      return 0;
    }
    if (!this.#scheduled && !this.#inflight) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return 0;
  }

  /** Forgets what is queued (the engine went away); returns how many messages that was. */
  clear(): number {
    const n = this.#queued;
    this.#pending = new Map();
    this.#queued = 0;
    return n;
  }

  /** Sends what is queued now and waits for the sends in flight, at most `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queued > 0 || this.#inflight) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      if (!this.#inflight) this.#flush();
      if (!this.#inflight) continue;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#inflight,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#inflight || this.#queued === 0) return;
    const pending = this.#pending;
    this.#pending = new Map();
    this.#queued = 0;
    const frames: OutFrame[] = [];
    const limit = Math.max(64, this.#o.maxFrameBytes() - HEADER_RESERVE);
    for (const [channel, messages] of pending) this.#pack(channel, messages, limit, frames);
    let sent: void | Promise<void>;
    try {
      sent = this.#o.send(frames);
    } catch {
      sent = undefined;
    }
    if (!sent) return;
    this.#inflight = sent.then(
      () => this.#settled(),
      () => this.#settled(),
    );
  };

  #settled(): void {
    this.#inflight = undefined;
    if (this.#queued > 0) this.#flush();
  }

  #next(channel: string): number {
    const seq = (this.#seq.get(channel) ?? 0) + 1;
    this.#seq.set(channel, seq);
    return seq;
  }

  #pack(channel: string, messages: string[], limit: number, out: OutFrame[]): void {
    const pub = this.#o.publisher;
    let batch: string[] = [];
    let bytes = 0;
    const close = () => {
      if (batch.length === 0) return;
      const data = messagesFrame(pub, this.#next(channel), batch);
      // The header is ASCII; the body's UTF-8 size was counted message by message.
      const headerBytes = data.length - bodyChars(batch);
      out.push({ channel, data, bytes: headerBytes + bytes, messages: batch.length });
      batch = [];
      bytes = 0;
    };
    for (let m of messages) {
      // A JSON text's raw newline can only be whitespace between tokens (inside a string it
      // would be invalid JSON): a space means the same and keeps one message per line.
      if (m.includes('\n')) m = m.replaceAll('\n', ' ');
      const size = Buffer.byteLength(m);
      if (size > limit) {
        close();
        this.#large(channel, m, limit, out);
        continue;
      }
      const add = batch.length === 0 ? size : size + 1;
      if (bytes + add > limit) {
        close();
        batch.push(m);
        bytes = size;
      } else {
        batch.push(m);
        bytes += add;
      }
    }
    close();
  }

  #large(channel: string, message: string, limit: number, out: OutFrame[]): void {
    const pub = this.#o.publisher;
    if (this.#o.large === 'reference') {
      const ref = `${pub}.${++this.#refs}`;
      const data = refFrame(pub, this.#next(channel), 1, ref);
      out.push({ channel, data, bytes: data.length, messages: 1, spill: { ref, body: message } });
      return;
    }
    const bytes = Buffer.from(message, 'utf8');
    const parts = Math.ceil(bytes.length / limit);
    for (let i = 0; i < parts; i++) {
      const data = partFrame(pub, this.#next(channel), i, parts, bytes.subarray(i * limit, (i + 1) * limit));
      out.push({ channel, data, bytes: data.length, messages: i === parts - 1 ? 1 : 0 });
    }
  }
}

function bodyChars(batch: string[]): number {
  let n = batch.length - 1;
  for (const m of batch) n += m.length;
  return n;
}
