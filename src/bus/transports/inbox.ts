// The receiving side shared by every transport: reads each arriving frame, checks its publisher's
// frame counter (a jump is a gap, a repeat is dropped), reassembles parts, and says what to
// deliver or which reference to fetch. Anything unreadable is counted as dropped; it never throws.
import { isUtf8 } from 'node:buffer';
import type { Counters } from './counters.ts';
import { parseFrame } from './frame.ts';

export type Accepted = { messages: string[] } | { ref: string; count: number };

export interface InboxOptions {
  counters: Counters;
  /** Frames larger than this are dropped unread. */
  maxFrameBytes(): number;
  /** A message reassembled from parts may not grow past this (default 64 MiB). */
  maxMessageBytes?: number;
  /** (channel, publisher) pairs remembered at most (the oldest is forgotten first; default 10,000). */
  maxPublishers?: number;
}

interface Partial {
  parts: number;
  next: number;
  bytes: number;
  chunks: Buffer[];
}

interface Peer {
  seq: number;
  partial: Partial | undefined;
}

/** All partial messages together may hold at most this many bytes. */
const PARTIAL_BUDGET = 256 * 1024 * 1024;

export class Inbox {
  readonly #o: InboxOptions;
  readonly #c: Counters;
  readonly #maxMessage: number;
  readonly #maxPeers: number;
  readonly #peers = new Map<string, Peer>();
  #partialBytes = 0;

  constructor(opts: InboxOptions) {
    this.#o = opts;
    this.#c = opts.counters;
    this.#maxMessage = opts.maxMessageBytes ?? 64 * 1024 * 1024;
    this.#maxPeers = opts.maxPublishers ?? 10_000;
  }

  /** One frame that arrived on `channel`: what to deliver, a reference to fetch, or nothing. */
  accept(channel: string, data: string | Uint8Array): Accepted | undefined {
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    this.#c.framesIn++;
    this.#c.bytesIn += bytes;
    if (bytes > this.#o.maxFrameBytes()) return this.#drop();
    const frame = parseFrame(data);
    if (!frame) return this.#drop();
    const key = `${channel}\u0000${frame.publisher}`;
    let peer = this.#peers.get(key);
    if (!peer) {
      if (this.#peers.size >= this.#maxPeers) this.#forgetOldest();
      peer = { seq: frame.seq - 1, partial: undefined };
      this.#peers.set(key, peer);
    }
    if (frame.seq <= peer.seq) return this.#drop();
    if (frame.seq > peer.seq + 1) {
      this.#c.gaps += frame.seq - peer.seq - 1;
      this.#abandon(peer);
    }
    peer.seq = frame.seq;
    if (frame.kind === 'm') return { messages: frame.messages };
    if (frame.kind === 'r') {
      this.#abandon(peer);
      return { ref: frame.ref, count: frame.count };
    }
    return this.#part(peer, frame.index, frame.parts, frame.chunk);
  }

  /** Counts one frame as dropped (also for a reference that could not be fetched). */
  dropped(): undefined {
    return this.#drop();
  }

  #part(peer: Peer, index: number, parts: number, chunk: Buffer): Accepted | undefined {
    let p = peer.partial;
    if (index === 0) {
      if (p) this.#abandon(peer);
      p = { parts, next: 0, bytes: 0, chunks: [] };
      peer.partial = p;
    }
    if (!p || index !== p.next || parts !== p.parts) {
      this.#abandon(peer);
      return this.#drop();
    }
    if (p.bytes + chunk.length > this.#maxMessage || this.#partialBytes + chunk.length > PARTIAL_BUDGET) {
      this.#abandon(peer);
      return this.#drop();
    }
    // A copy: the engine's client may reuse the buffer the chunk lives in.
    p.chunks.push(Buffer.from(chunk));
    p.bytes += chunk.length;
    this.#partialBytes += chunk.length;
    p.next++;
    if (p.next < p.parts) return undefined;
    const whole = Buffer.concat(p.chunks, p.bytes);
    this.#partialBytes -= p.bytes;
    peer.partial = undefined;
    // The parts of a valid message are the bytes of one line of UTF-8.
    if (whole.includes(10) || !isUtf8(whole)) return this.#drop();
    return { messages: [whole.toString('utf8')] };
  }

  /** Drops a partly received message (its other parts were lost); counted as one dropped frame. */
  #abandon(peer: Peer): void {
    const p = peer.partial;
    if (!p) return;
    peer.partial = undefined;
    this.#partialBytes -= p.bytes;
    this.#c.dropped++;
  }

  #forgetOldest(): void {
    for (const [key, peer] of this.#peers) {
      this.#abandon(peer);
      this.#peers.delete(key);
      return;
    }
  }

  #drop(): undefined {
    this.#c.dropped++;
    return undefined;
  }
}
