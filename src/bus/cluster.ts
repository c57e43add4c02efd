// The cluster protocol over a transport (Phoenix.PubSub's job, on an existing engine): which node
// wants which topic (interest, acknowledged before a join reads state), which nodes are alive
// (beats), events sent only to the nodes that want their topic, and request/reply between nodes.
// It knows topics and delivery classes, never what an event means.
//
// Channels: `all` (every node: hello, sub, unsub, beat, bye) and `node.<id>` (one node: events,
// acks, state, requests, replies). A transport keeps each publisher's order per channel, and every
// message to one node goes through that node's channel, so an ack, the events after it and a reply
// reach it in the order they were sent.
import type { Logger } from 'pino';
import type { DeliveryClass, TopicEvent } from './event.ts';
import { topicEvent } from './event.ts';
import type { BusTransport } from './transport.ts';

const ALL = 'all';
const STATE_CHUNK = 500;
/** Events queued for one node past which they leave at once, mid-turn (see #push). */
const CHUNK = 256;
const RESOLVED = Promise.resolve();
const CLASSES: ReadonlySet<string> = new Set(['latest', 'always', 'ordered']);

export function nodeChannel(nodeId: string): string {
  return `node.${nodeId}`;
}

export interface ClusterOptions {
  nodeId: string;
  transport: BusTransport;
  log: Logger;
  /** How often this node says it is alive (default 1000 ms). */
  beatMs?: number;
  /** A node silent this long is gone: its interest is dropped (default 5 × beatMs). */
  deadAfterMs?: number;
  /** How long a new interest waits for the other nodes' acknowledgements (default 1000 ms). */
  ackTimeoutMs?: number;
  /** How long a request waits for its reply (default 2000 ms). */
  requestTimeoutMs?: number;
}

/** What the cluster tells the node's PubSub. */
export interface ClusterHandlers {
  /** An event from another node, for a topic this node wants. */
  event(event: TopicEvent, from: string): void;
  /** The bus went down (false) or came back (true). */
  availability(up: boolean): void;
  /**
   * Events from `node` may have been lost (it restarted or reconnected): feeds from it are broken.
   * `wide`: it had taken this node for dead and sent it nothing for a while, so every feed from
   * other nodes may have missed its events: one that had none from it yet, or that it shares with
   * other nodes (a user's topic), as much as one it fed last.
   */
  feedBroken(node: string, wide: boolean): void;
}

export type RequestHandler = (body: unknown, from: string) => unknown;

export class BusUnavailableError extends Error {
  override name = 'BusUnavailableError';
  constructor(message = 'the bus is unavailable') {
    super(message);
  }
}

export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
}

export interface ClusterStats {
  eventsOut: number;
  eventsIn: number;
  /** Messages that were malformed or of an unknown shape: dropped. */
  dropped: number;
  peers: number;
  up: boolean;
}

interface Peer {
  seen: number;
  topics: Set<string>;
}

interface AckWait {
  waiting: Set<string>;
  resolve: () => void;
  timer: NodeJS.Timeout;
}

interface PendingRequest {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Wire messages (short keys: they are on every frame). */
type Message =
  | { k: 'hello'; n: string }
  | { k: 'state'; n: string; topics: string[]; reset: boolean; end: boolean }
  | { k: 'sub'; n: string; topics: string[]; id?: number }
  | { k: 'unsub'; n: string; topics: string[] }
  | { k: 'ack'; n: string; id: number }
  | { k: 'beat'; n: string; c: number }
  | { k: 'sync'; n: string; lost?: boolean }
  | { k: 'bye'; n: string }
  | { k: 'ev'; n: string; t: string; e: string; c: DeliveryClass; y: string; s: number; p: object; w: number }
  | { k: 'req'; n: string; id: number; op: string; b: unknown }
  | { k: 'rep'; n: string; id: number; b?: unknown; err?: string };

export class Cluster {
  readonly nodeId: string;
  readonly #t: BusTransport;
  readonly #log: Logger;
  readonly #beatMs: number;
  readonly #deadAfterMs: number;
  readonly #ackTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  #h: ClusterHandlers | undefined;
  /** Topics this node wants. */
  readonly #mine = new Set<string>();
  readonly #peers = new Map<string, Peer>();
  /** Nodes dropped as silent: if one speaks again, it must learn that it missed what we did not send. */
  readonly #dropped = new Set<string>();
  /** topic -> the other nodes that want it. */
  readonly #interest = new Map<string, Set<string>>();
  readonly #outbox = new Map<string, string[]>();
  #flushQueued = false;
  #subsQueued = new Set<string>();
  #unsubsQueued = new Set<string>();
  /** The acknowledgement the queued subs will wait for, shared by every topic in the batch. */
  #batch: { promise: Promise<void>; resolve: () => void } | undefined;
  /** topic -> its interest's acknowledgement, while it is awaited. */
  readonly #acking = new Map<string, Promise<void>>();
  readonly #ackWaits = new Map<number, AckWait>();
  readonly #requests = new Map<number, PendingRequest>();
  readonly #handlers = new Map<string, RequestHandler>();
  #helloWait: { expect: Set<string>; resolve: () => void } | undefined;
  #nextId = 1;
  /** How many times a node became this one's peer (see `arrivals`). */
  #arrivals = 0;
  #up = false;
  #stopped = false;
  #beatTimer: NodeJS.Timeout | undefined;
  readonly #stats = { eventsOut: 0, eventsIn: 0, dropped: 0 };
  /** Observes the delay of each event from its sender (metrics). */
  onLag: ((ms: number) => void) | undefined;

  constructor(opts: ClusterOptions) {
    this.nodeId = opts.nodeId;
    this.#t = opts.transport;
    this.#log = opts.log;
    this.#beatMs = opts.beatMs ?? 1000;
    this.#deadAfterMs = opts.deadAfterMs ?? this.#beatMs * 5;
    this.#ackTimeoutMs = opts.ackTimeoutMs ?? 1000;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 2000;
  }

  get up(): boolean {
    return this.#up;
  }

  get transport(): BusTransport {
    return this.#t;
  }

  /** The other nodes this one has heard from recently. */
  peers(): string[] {
    return [...this.#peers.keys()];
  }

  isPeer(nodeId: string): boolean {
    return this.#peers.has(nodeId);
  }

  /** True while this node has heard of no other live node. */
  get alone(): boolean {
    return this.#peers.size === 0;
  }

  /**
   * How many times another node became this one's peer. While this count stays the same and the
   * node is `alone`, no other node has acted on a task here unseen: a node waits to hear from the
   * live ones before it claims anything, and they count it as a peer from its hello on.
   */
  get arrivals(): number {
    return this.#arrivals;
  }

  stats(): ClusterStats {
    return { ...this.#stats, peers: this.#peers.size, up: this.#up };
  }

  /**
   * Connects, says hello, and waits (bounded) until each node in `expectPeers` (the nodes the
   * liveness table says are alive) has told this one what it wants, so that no event for a topic
   * another node already wants is published before this node knows it.
   */
  async start(handlers: ClusterHandlers, expectPeers: string[] = []): Promise<void> {
    this.#h = handlers;
    await this.#t.start([ALL, nodeChannel(this.nodeId)], {
      deliver: (channel, messages) => this.#deliver(channel, messages),
      up: () => this.#transportUp(),
      down: (err) => this.#transportDown(err),
    });
    this.#up = true;
    const expect = new Set(expectPeers.filter((n) => n !== this.nodeId));
    const heard = new Promise<void>((resolve) => {
      if (expect.size === 0) return resolve();
      this.#helloWait = { expect, resolve };
    });
    this.#hello();
    const timer = setTimeout(() => this.#helloWait?.resolve(), this.#ackTimeoutMs * 2);
    await heard;
    clearTimeout(timer);
    this.#helloWait = undefined;
    this.#beatTimer = setInterval(() => this.#beat(), this.#beatMs);
    this.#beatTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#beatTimer);
    if (this.#up) this.#send(ALL, { k: 'bye', n: this.nodeId });
    this.#flush();
    for (const wait of this.#ackWaits.values()) {
      clearTimeout(wait.timer);
      wait.resolve();
    }
    this.#ackWaits.clear();
    for (const req of this.#requests.values()) {
      clearTimeout(req.timer);
      req.reject(new BusUnavailableError('the node is stopping'));
    }
    this.#requests.clear();
    this.#up = false;
    await this.#t.stop();
  }

  // ---- interest ----

  /**
   * This node wants `topic`. Resolves once every live node has acknowledged it (or the ack
   * timeout passed), so that from then on every node sends its events for the topic here.
   */
  want(topic: string): Promise<void> {
    if (this.#mine.has(topic)) return this.#acking.get(topic) ?? RESOLVED;
    this.#mine.add(topic);
    this.#unsubsQueued.delete(topic);
    if (this.#peers.size === 0 || !this.#up) return RESOLVED;
    this.#subsQueued.add(topic);
    this.#queueFlush();
    if (!this.#batch) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#batch = { promise, resolve };
    }
    this.#acking.set(topic, this.#batch.promise);
    return this.#batch.promise;
  }

  unwant(topic: string): void {
    if (!this.#mine.delete(topic)) return;
    this.#subsQueued.delete(topic);
    if (this.#peers.size === 0 || !this.#up) return;
    this.#unsubsQueued.add(topic);
    this.#queueFlush();
  }

  /** Another node wants `topic`: its events should go on the bus. */
  remoteWants(topic: string): boolean {
    return this.#interest.has(topic);
  }

  // ---- events ----

  /** Sends an event to every other node that wants its topic (batched per event-loop turn). */
  forward(event: TopicEvent): void {
    const nodes = this.#interest.get(event.topic);
    if (!nodes || !this.#up) return;
    const msg = JSON.stringify({
      k: 'ev',
      n: this.nodeId,
      t: event.topic,
      e: event.name,
      c: event.class,
      y: event.key,
      s: event.seq,
      p: event.payload,
      w: Date.now(),
    });
    for (const node of nodes) {
      this.#stats.eventsOut += 1;
      this.#push(nodeChannel(node), msg);
    }
  }

  // ---- requests ----

  /** Serves requests named `op` from other nodes; the handler's value (or promise) is the reply. */
  handle(op: string, handler: RequestHandler): void {
    this.#handlers.set(op, handler);
  }

  /** Asks `nodeId` and waits for its reply (rejects on timeout, an error reply, or the bus down). */
  request(nodeId: string, op: string, body: unknown, timeoutMs = this.#requestTimeoutMs): Promise<unknown> {
    if (!this.#up) return Promise.reject(new BusUnavailableError());
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests.delete(id);
        reject(new RequestTimeoutError(`${op} to ${nodeId}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.#requests.set(id, { resolve, reject, timer });
      this.#send(nodeChannel(nodeId), { k: 'req', n: this.nodeId, id, op, b: body });
    });
  }

  // ---- outbound ----

  #send(channel: string, msg: Message): void {
    this.#push(channel, JSON.stringify(msg));
  }

  #push(channel: string, text: string): void {
    const box = this.#outbox.get(channel);
    if (!box) this.#outbox.set(channel, [text]);
    else if (box.push(text) >= CHUNK && channel !== ALL && this.#up) {
      // A burst leaves in chunks while it is produced (the transport sends a chunk at once), so
      // the node it goes to starts on the first events instead of waiting for the whole turn.
      // Not `all`: interest queued this turn must go ahead of what is queued there (see #flush).
      this.#outbox.delete(channel);
      this.#t.publish(channel, box);
      return;
    }
    this.#queueFlush();
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    // Interest goes to `all` ahead of anything else queued there this turn (a beat counts it).
    const interest: Message[] = [];
    if (this.#unsubsQueued.size > 0) {
      const topics = [...this.#unsubsQueued];
      this.#unsubsQueued.clear();
      for (let i = 0; i < topics.length; i += STATE_CHUNK)
        interest.push({ k: 'unsub', n: this.nodeId, topics: topics.slice(i, i + STATE_CHUNK) });
    }
    if (this.#subsQueued.size > 0 || this.#batch) this.#queueSubs(interest);
    if (interest.length > 0) {
      const texts = interest.map((m) => JSON.stringify(m));
      const box = this.#outbox.get(ALL);
      if (box) box.unshift(...texts);
      else this.#outbox.set(ALL, texts);
    }
    if (!this.#up) {
      this.#outbox.clear();
      return;
    }
    for (const [channel, messages] of this.#outbox) this.#t.publish(channel, messages);
    this.#outbox.clear();
  }

  /** The queued subs, the last chunk asking every live peer to acknowledge the batch. */
  #queueSubs(out: Message[]): void {
    const topics = [...this.#subsQueued];
    this.#subsQueued.clear();
    const batch = this.#batch;
    this.#batch = undefined;
    const done = () => {
      for (const topic of topics) if (this.#acking.get(topic) === batch?.promise) this.#acking.delete(topic);
      batch?.resolve();
    };
    const waiting = new Set(this.#peers.keys());
    if (topics.length === 0 || waiting.size === 0 || !this.#up) {
      done();
      return;
    }
    const id = this.#nextId++;
    const timer = setTimeout(() => {
      const wait = this.#ackWaits.get(id);
      if (!wait) return;
      this.#ackWaits.delete(id);
      this.#log.debug(
        { nodes: [...wait.waiting], topics: topics.length },
        'interest not acknowledged in time',
      );
      wait.resolve();
    }, this.#ackTimeoutMs);
    timer.unref();
    this.#ackWaits.set(id, { waiting, resolve: done, timer });
    for (let i = 0; i < topics.length; i += STATE_CHUNK) {
      const last = i + STATE_CHUNK >= topics.length;
      out.push({
        k: 'sub',
        n: this.nodeId,
        topics: topics.slice(i, i + STATE_CHUNK),
        ...(last ? { id } : {}),
      });
    }
  }

  #hello(): void {
    this.#send(ALL, { k: 'hello', n: this.nodeId });
    const topics = [...this.#mine];
    for (let i = 0; i < topics.length; i += STATE_CHUNK)
      this.#send(ALL, { k: 'sub', n: this.nodeId, topics: topics.slice(i, i + STATE_CHUNK) });
  }

  #sendState(to: string): void {
    const topics = [...this.#mine];
    const channel = nodeChannel(to);
    if (topics.length === 0) {
      this.#send(channel, { k: 'state', n: this.nodeId, topics: [], reset: true, end: true });
      return;
    }
    for (let i = 0; i < topics.length; i += STATE_CHUNK) {
      this.#send(channel, {
        k: 'state',
        n: this.nodeId,
        topics: topics.slice(i, i + STATE_CHUNK),
        reset: i === 0,
        end: i + STATE_CHUNK >= topics.length,
      });
    }
  }

  #beat(): void {
    if (!this.#up) return;
    this.#send(ALL, { k: 'beat', n: this.nodeId, c: this.#mine.size });
    const now = Date.now();
    for (const [node, peer] of this.#peers) {
      if (now - peer.seen > this.#deadAfterMs) {
        this.#log.info({ peer: node }, 'bus peer silent; dropping its interest');
        this.#removePeer(node);
        this.#dropped.add(node);
        if (this.#dropped.size > 1000) this.#dropped.delete(this.#dropped.values().next().value!);
      }
    }
  }

  // ---- transport events ----

  #transportDown(err: Error): void {
    if (!this.#up) return;
    this.#up = false;
    this.#log.warn({ err }, 'bus down: remote subscribers of this node are told to rejoin');
    for (const req of this.#requests.values()) {
      clearTimeout(req.timer);
      req.reject(new BusUnavailableError());
    }
    this.#requests.clear();
    for (const wait of this.#ackWaits.values()) {
      clearTimeout(wait.timer);
      wait.resolve();
    }
    this.#ackWaits.clear();
    this.#h?.availability(false);
  }

  #transportUp(): void {
    if (this.#up || this.#stopped) return;
    this.#up = true;
    this.#log.info('bus back: resynchronising interest');
    // Anything may have been lost meanwhile, both ways: start over with every peer.
    for (const node of [...this.#peers.keys()]) this.#removePeer(node);
    this.#hello();
    this.#h?.availability(true);
  }

  // ---- inbound ----

  #deliver(_channel: string, messages: string[]): void {
    for (const text of messages) {
      let msg: Message;
      try {
        msg = JSON.parse(text) as Message;
      } catch {
        this.#stats.dropped += 1;
        continue;
      }
      try {
        if (!this.#handle(msg)) this.#stats.dropped += 1;
      } catch (err) {
        this.#stats.dropped += 1;
        this.#log.warn({ err }, 'bus message handling failed; dropped');
      }
    }
  }

  /** False when the message has a wrong shape. */
  #handle(msg: Message): boolean {
    if (typeof msg !== 'object' || msg === null || typeof msg.n !== 'string' || typeof msg.k !== 'string')
      return false;
    const from = msg.n;
    if (from === this.nodeId) return true; // our own broadcast
    switch (msg.k) {
      case 'ev':
        return this.#onEvent(msg);
      case 'hello':
        // A restarted or reconnected node has lost its remote feeds already: no `lost` sync for it.
        this.#dropped.delete(from);
        this.#resetPeer(from);
        this.#sendState(from);
        this.#h?.feedBroken(from, false);
        return true;
      case 'state':
        if (!Array.isArray(msg.topics)) return false;
        if (msg.reset) this.#resetPeer(from);
        this.#addInterest(from, msg.topics);
        if (msg.end && this.#helloWait?.expect.delete(from) && this.#helloWait.expect.size === 0)
          this.#helloWait.resolve();
        return true;
      case 'sub':
        if (!Array.isArray(msg.topics)) return false;
        this.#addInterest(from, msg.topics);
        if (typeof msg.id === 'number')
          this.#send(nodeChannel(from), { k: 'ack', n: this.nodeId, id: msg.id });
        return true;
      case 'unsub': {
        if (!Array.isArray(msg.topics)) return false;
        const peer = this.#touch(from);
        for (const topic of msg.topics) this.#dropInterest(from, peer, topic);
        return true;
      }
      case 'ack': {
        this.#touch(from);
        const wait = this.#ackWaits.get(msg.id);
        if (wait?.waiting.delete(from) && wait.waiting.size === 0) {
          clearTimeout(wait.timer);
          this.#ackWaits.delete(msg.id);
          wait.resolve();
        }
        return true;
      }
      case 'beat': {
        const known = this.#peers.get(from);
        const back = !known && this.#dropped.has(from); // #touch asks it for all of it (a `lost` sync)
        const peer = this.#touch(from);
        // A node heard of for the first time, or whose interest we lost count of: ask for all of it.
        if (!back && (!known || peer.topics.size !== msg.c))
          this.#send(nodeChannel(from), { k: 'sync', n: this.nodeId });
        return true;
      }
      case 'sync':
        this.#touch(from);
        // It had dropped this node as silent and sent it nothing meanwhile: what it fed is stale.
        if (msg.lost === true) this.#h?.feedBroken(from, true);
        this.#sendState(from);
        return true;
      case 'bye':
        this.#removePeer(from);
        return true;
      case 'req':
        this.#onRequest(msg);
        return true;
      case 'rep': {
        const req = this.#requests.get(msg.id);
        if (!req) return true; // timed out already
        this.#requests.delete(msg.id);
        clearTimeout(req.timer);
        if (typeof msg.err === 'string') req.reject(new Error(msg.err));
        else req.resolve(msg.b);
        return true;
      }
      default:
        return false;
    }
  }

  #onEvent(m: Extract<Message, { k: 'ev' }>): boolean {
    if (
      typeof m.t !== 'string' ||
      typeof m.e !== 'string' ||
      !CLASSES.has(m.c) ||
      typeof m.y !== 'string' ||
      typeof m.s !== 'number' ||
      typeof m.p !== 'object' ||
      m.p === null
    )
      return false;
    this.#stats.eventsIn += 1;
    if (typeof m.w === 'number') this.onLag?.(Math.max(0, Date.now() - m.w));
    if (!this.#mine.has(m.t)) return true; // we stopped wanting it meanwhile
    this.#h?.event(topicEvent(m.t, m.e, m.p as Record<string, unknown>, m.c, m.y, m.s), m.n);
    return true;
  }

  #onRequest(m: Extract<Message, { k: 'req' }>): void {
    const reply = (b: unknown, err?: string) =>
      this.#send(
        nodeChannel(m.n),
        err === undefined
          ? { k: 'rep', n: this.nodeId, id: m.id, b }
          : { k: 'rep', n: this.nodeId, id: m.id, err },
      );
    const handler = this.#handlers.get(m.op);
    if (!handler) {
      reply(undefined, `unknown request ${String(m.op)}`);
      return;
    }
    Promise.resolve()
      .then(() => handler(m.b, m.n))
      .then(
        (b) => reply(b ?? null),
        (err: unknown) => reply(undefined, err instanceof Error ? err.message : String(err)),
      );
  }

  // ---- peers ----

  #touch(node: string): Peer {
    let peer = this.#peers.get(node);
    if (!peer) {
      peer = { seen: Date.now(), topics: new Set() };
      this.#peers.set(node, peer);
      this.#arrivals += 1;
      // Back from silence (paused, starved, cut off): it missed what was not sent to it meanwhile,
      // so it must drop those feeds (its clients rejoin to the truth) and tell its interest again.
      if (this.#dropped.delete(node))
        this.#send(nodeChannel(node), { k: 'sync', n: this.nodeId, lost: true });
    } else peer.seen = Date.now();
    return peer;
  }

  #resetPeer(node: string): Peer {
    const peer = this.#peers.get(node);
    if (peer) for (const topic of [...peer.topics]) this.#dropInterest(node, peer, topic);
    return this.#touch(node);
  }

  #addInterest(node: string, topics: unknown[]): void {
    const peer = this.#touch(node);
    for (const topic of topics) {
      if (typeof topic !== 'string') continue;
      peer.topics.add(topic);
      const nodes = this.#interest.get(topic);
      if (nodes) nodes.add(node);
      else this.#interest.set(topic, new Set([node]));
    }
  }

  #dropInterest(node: string, peer: Peer, topic: unknown): void {
    if (typeof topic !== 'string') return;
    peer.topics.delete(topic);
    const nodes = this.#interest.get(topic);
    if (nodes?.delete(node) && nodes.size === 0) this.#interest.delete(topic);
  }

  #removePeer(node: string): void {
    const peer = this.#peers.get(node);
    if (!peer) return;
    for (const topic of [...peer.topics]) this.#dropInterest(node, peer, topic);
    this.#peers.delete(node);
    this.#outbox.delete(nodeChannel(node));
    for (const [id, wait] of this.#ackWaits) {
      if (wait.waiting.delete(node) && wait.waiting.size === 0) {
        clearTimeout(wait.timer);
        this.#ackWaits.delete(id);
        wait.resolve();
      }
    }
  }
}
