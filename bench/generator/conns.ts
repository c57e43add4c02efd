// The generator's client connections: raw Phoenix V2 frames over `ws` (taskwire), and a
// Socket.IO client (the peer), behind one small interface. Inbound broadcasts are scanned in
// place (topic, event, seq, at) instead of JSON-parsed, so the generator stays cheap; every
// event goes to the Recorder, which checks seq order per subscription.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { io, type Socket } from 'socket.io-client';
import WebSocket, * as wsModule from 'ws';

export type Mode = 'phoenix' | 'socketio';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const SEQ_SLOTS = 4096;

/** One joined topic (task) on one connection, with its seq check. */
export class Sub {
  readonly taskId: string;
  joinSentAt = 0;
  /** Join round trip (ms); NaN until answered. */
  joinMs = Number.NaN;
  joined = false;
  failed = false;
  failReason = '';
  /** seq in the join reply's state. */
  startSeq = -1;
  lastSeq = 0;
  status = '';
  events = 0;
  gaps = 0;
  missing = 0;
  dups = 0;
  done = false;
  /** Date.now() when the terminal state was seen (event or join reply). */
  doneAt = 0;
  /** Called once when the join is answered, then when the task ends. */
  onJoin: ((ok: boolean) => void) | null = null;
  onDone: (() => void) | null = null;
  /** Streams: the join asks for output from this index (`output_from`); undefined: no output. */
  outputFrom: number | undefined = undefined;
  /** The index of the next output chunk expected (last + 1). */
  outputNext = 0;
  outputChunks = 0;
  outputMissing = 0;
  outputDups = 0;
  /** Chunks whose text does not name their index (`<index>@<ms> `). */
  outputBad = 0;
  /** The chunks' text, assembled in index order (streams check it against the stored output). */
  text = '';

  constructor(taskId: string) {
    this.taskId = taskId;
  }
}

/**
 * Lifecycle events that can reach a subscriber before the load starts (a join that beats the claim
 * sees `started` during the start gate): counted, but they do not open the receive span, which
 * would otherwise stretch over the gate and cut events/s to a third.
 */
const BEFORE_THE_LOAD = new Set(['started']);

/** Counts and latency samples of every event a generator process receives. */
export class Recorder {
  latency: number[] | null = null;
  /** Worst and summed latency per seq (seq < SEQ_SLOTS), to see which steps make the tail. */
  seqMax = new Float64Array(SEQ_SLOTS);
  seqSum = new Float64Array(SEQ_SLOTS);
  seqCount = new Float64Array(SEQ_SLOTS);
  events = 0;
  byName: Record<string, number> = {};
  unknown = 0;
  firstRecv = 0;
  lastRecv = 0;
  firstAt = 0;

  reset(sampleLatency: boolean): void {
    this.latency = sampleLatency ? [] : null;
    this.seqMax.fill(0);
    this.seqSum.fill(0);
    this.seqCount.fill(0);
    this.events = 0;
    this.byName = {};
    this.unknown = 0;
    this.firstRecv = 0;
    this.lastRecv = 0;
    this.firstAt = 0;
  }

  event(sub: Sub | undefined, name: string, seq: number, at: number): void {
    const now = Date.now();
    if (!sub) {
      this.unknown += 1;
      return;
    }
    this.events += 1;
    this.byName[name] = (this.byName[name] ?? 0) + 1;
    if (this.firstRecv === 0 && !BEFORE_THE_LOAD.has(name)) {
      this.firstRecv = now;
      this.firstAt = at;
    }
    if (this.firstRecv !== 0) this.lastRecv = now;
    if (this.latency) {
      const ms = now - at;
      this.latency.push(ms);
      if (seq >= 0 && seq < SEQ_SLOTS) {
        if (ms > this.seqMax[seq]) this.seqMax[seq] = ms;
        this.seqSum[seq] += ms;
        this.seqCount[seq] += 1;
      }
    }
    sub.events += 1;
    if (!sub.joined) {
      // Socket.IO may deliver room events before the join ack; the ack's state settles it.
      if (seq > sub.lastSeq) sub.lastSeq = seq;
    } else if (seq === sub.lastSeq + 1) {
      sub.lastSeq = seq;
    } else if (seq <= sub.lastSeq) {
      sub.dups += 1;
    } else {
      sub.gaps += 1;
      sub.missing += seq - sub.lastSeq - 1;
      sub.lastSeq = seq;
    }
    if (TERMINAL.has(name) && !sub.done) {
      sub.done = true;
      sub.status = name;
      sub.doneAt = now;
      sub.onDone?.();
    }
  }

  /**
   * An output chunk: in index order, once each (`output_from` on a rejoin resumes at
   * `outputNext`); the text `<index>@<ms> ` gives the latency and checks the index.
   */
  output(sub: Sub | undefined, index: number, data: string): void {
    const now = Date.now();
    if (!sub) {
      this.unknown += 1;
      return;
    }
    this.events += 1;
    this.byName.output = (this.byName.output ?? 0) + 1;
    if (this.firstRecv === 0) this.firstRecv = now;
    this.lastRecv = now;
    sub.outputChunks += 1;
    const at = data.indexOf('@');
    if (at < 1 || Number(data.slice(0, at)) !== index) sub.outputBad += 1;
    else if (this.latency) this.latency.push(now - Number(data.slice(at + 1)));
    if (index < sub.outputNext) {
      sub.outputDups += 1;
      return;
    }
    if (index > sub.outputNext) sub.outputMissing += index - sub.outputNext;
    sub.outputNext = index + 1;
    sub.text += data;
  }

  joinReply(sub: Sub, ok: boolean, status: string, seq: number, reason = ''): void {
    const now = Date.now();
    sub.joinMs = now - sub.joinSentAt;
    if (!ok) {
      sub.failed = true;
      sub.failReason = reason || 'join refused';
    } else {
      sub.joined = true;
      sub.startSeq = seq;
      if (seq > sub.lastSeq) sub.lastSeq = seq;
      if (!sub.done) sub.status = status;
      if (TERMINAL.has(status) && !sub.done) {
        sub.done = true;
        sub.doneAt = now;
      }
    }
    const cb = sub.onJoin;
    sub.onJoin = null;
    cb?.(ok);
    if (sub.done) sub.onDone?.();
  }
}

export interface ConnStats {
  heartbeatsSent: number;
  heartbeatsOk: number;
  unexpectedCloses: number;
  closeCodes: Record<string, number>;
}

export interface Conn {
  readonly subs: Map<string, Sub>;
  readonly target: ConnTarget;
  open(): Promise<void>;
  join(sub: Sub): Promise<boolean>;
  leave(sub: Sub): void;
  heartbeat(): void;
  close(): Promise<void>;
  /** Drops the connection at once (no close handshake), as a lost network would; not counted as unexpected. */
  cut(): Promise<void>;
}

export interface ConnTarget {
  mode: Mode;
  /**
   * phoenix mode: the lean client (LeanPhoenixConn: net socket with `onread`, ws's Sender for
   * outgoing frames) instead of a `ws` WebSocket. Much cheaper per received frame.
   */
  lean?: boolean;
  /** ws://host:port (phoenix) or http://host:port (socketio) */
  url: string;
  token: string;
  localAddress?: string;
}

const BROADCAST = Buffer.from('[null,null,"task:');
const SEQ_KEY = Buffer.from('"seq":');
const AT_KEY = Buffer.from(',"at":');
const INDEX_KEY = Buffer.from('"index":');
const DATA_KEY = Buffer.from('"data":"');
const QUOTE = 0x22;

function readInt(buf: Buffer, from: number): number {
  let n = 0;
  let i = from;
  let neg = false;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  for (; i < buf.length; i++) {
    const c = buf[i] - 0x30;
    if (c < 0 || c > 9) break;
    n = n * 10 + c;
  }
  return neg ? -n : n;
}

/**
 * One inbound Phoenix V2 text frame: a broadcast is scanned in place (topic, event, seq, at; no
 * JSON.parse); replies (joins, heartbeats) and errors are parsed.
 */
function phoenixFrame(
  data: Buffer,
  subs: Map<string, Sub>,
  pending: Map<string, Sub>,
  rec: Recorder,
  stats: ConnStats,
): void {
  if (data.compare(BROADCAST, 0, BROADCAST.length, 0, BROADCAST.length) === 0) {
    const topicEnd = data.indexOf(QUOTE, BROADCAST.length);
    const taskId = data.toString('latin1', BROADCAST.length, topicEnd);
    const eventStart = topicEnd + 3;
    const eventEnd = data.indexOf(QUOTE, eventStart);
    const name = data.toString('latin1', eventStart, eventEnd);
    if (name === 'output') {
      // {"task_id":…,"index":N,"data":"…","attempt":A}: the bench's chunks have no escapes.
      const i = data.indexOf(INDEX_KEY, eventEnd);
      const d = data.indexOf(DATA_KEY, eventEnd);
      const dataStart = d + DATA_KEY.length;
      rec.output(
        subs.get(taskId),
        i === -1 ? -1 : readInt(data, i + INDEX_KEY.length),
        d === -1 ? '' : data.toString('utf8', dataStart, data.indexOf(QUOTE, dataStart)),
      );
      return;
    }
    const s = data.indexOf(SEQ_KEY, eventEnd);
    const a = data.indexOf(AT_KEY, eventEnd);
    rec.event(
      subs.get(taskId),
      name,
      s === -1 ? -1 : readInt(data, s + SEQ_KEY.length),
      a === -1 ? 0 : readInt(data, a + AT_KEY.length),
    );
    return;
  }
  let msg: [string | null, string | null, string, string, any];
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch {
    return;
  }
  const [, ref, topic, event, payload] = msg;
  if (event === 'phx_reply') {
    if (topic === 'phoenix') {
      stats.heartbeatsOk += 1;
      return;
    }
    const sub = ref === null ? undefined : pending.get(ref);
    if (!sub) return; // leave replies
    pending.delete(ref!);
    if (payload?.status === 'ok') {
      const task = payload.response?.task ?? {};
      rec.joinReply(sub, true, String(task.status ?? ''), Number(task.seq ?? 0));
    } else {
      subs.delete(sub.taskId);
      rec.joinReply(sub, false, '', 0, JSON.stringify(payload?.response ?? payload));
    }
  } else if (event === 'phx_error') {
    const sub = subs.get(String(topic).slice(5));
    if (sub && !sub.done) {
      sub.failed = true;
      sub.failReason = 'phx_error';
    }
  }
}

/** What both Phoenix V2 clients share: the subscriptions, the refs, and the frames they send. */
abstract class PhoenixChannelConn {
  readonly subs = new Map<string, Sub>();
  protected readonly pending = new Map<string, Sub>();
  protected readonly t: ConnTarget;
  protected readonly rec: Recorder;
  protected readonly stats: ConnStats;
  #ref = 0;

  constructor(target: ConnTarget, rec: Recorder, stats: ConnStats) {
    this.t = target;
    this.rec = rec;
    this.stats = stats;
  }

  get target(): ConnTarget {
    return this.t;
  }

  /** Sends one text frame while the socket is open (dropped otherwise). */
  protected abstract send(text: string): void;

  join(sub: Sub): Promise<boolean> {
    const ref = String(++this.#ref);
    this.subs.set(sub.taskId, sub);
    this.pending.set(ref, sub);
    return new Promise((resolve) => {
      sub.onJoin = resolve;
      sub.joinSentAt = Date.now();
      const params = sub.outputFrom === undefined ? '{}' : `{"output_from":${sub.outputFrom}}`;
      this.send(`["${ref}","${ref}","task:${sub.taskId}","phx_join",${params}]`);
    });
  }

  leave(sub: Sub): void {
    if (this.subs.get(sub.taskId) !== sub) return;
    this.subs.delete(sub.taskId);
    const ref = String(++this.#ref);
    this.send(`[null,"${ref}","task:${sub.taskId}","phx_leave",{}]`);
  }

  heartbeat(): void {
    this.stats.heartbeatsSent += 1;
    this.send(`[null,"${++this.#ref}","phoenix","heartbeat",{}]`);
  }
}

/** A raw Phoenix V2 client on `ws`: joins, leaves, heartbeats, scanned broadcasts. */
export class PhoenixConn extends PhoenixChannelConn implements Conn {
  #ws: WebSocket | null = null;
  #closing = false;
  #closed: Promise<void> | null = null;

  cut(): Promise<void> {
    this.#closing = true;
    this.#ws?.terminate();
    return this.#closed ?? Promise.resolve();
  }

  open(): Promise<void> {
    const url = `${this.t.url}/socket/websocket?token=${encodeURIComponent(this.t.token)}&vsn=2.0.0`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        localAddress: this.t.localAddress,
        handshakeTimeout: 60_000,
      });
      this.#ws = ws;
      let opened = false;
      this.#closed = new Promise((done) => {
        ws.on('close', (code) => {
          if (opened && !this.#closing) {
            this.stats.unexpectedCloses += 1;
            this.stats.closeCodes[code] = (this.stats.closeCodes[code] ?? 0) + 1;
            for (const sub of this.pending.values()) this.rec.joinReply(sub, false, '', 0, `closed ${code}`);
            this.pending.clear();
          }
          done();
        });
      });
      ws.on('open', () => {
        opened = true;
        resolve();
      });
      ws.on('error', (err) => {
        if (!opened) reject(err);
      });
      ws.on('message', (data: Buffer) => this.#frame(data));
    });
  }

  #frame(data: Buffer): void {
    phoenixFrame(data, this.subs, this.pending, this.rec, this.stats);
  }

  protected send(frame: string): void {
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(frame);
  }

  close(): Promise<void> {
    this.#closing = true;
    const ws = this.#ws;
    if (!ws) return Promise.resolve();
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1001, 'done');
    const timer = setTimeout(() => ws.terminate(), 5000);
    return this.#closed!.then(() => clearTimeout(timer));
  }
}

/** The peer's client: socket.io-client over WebSocket only, one room per task. */
export class SocketIoConn implements Conn {
  readonly subs = new Map<string, Sub>();
  readonly #t: ConnTarget;
  readonly #rec: Recorder;
  readonly #stats: ConnStats;
  #socket: Socket | null = null;
  #closing = false;

  constructor(target: ConnTarget, rec: Recorder, stats: ConnStats) {
    this.#t = target;
    this.#rec = rec;
    this.#stats = stats;
  }

  get target(): ConnTarget {
    return this.#t;
  }

  cut(): Promise<void> {
    return this.close();
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = io(this.#t.url, {
        transports: ['websocket'],
        auth: { token: this.#t.token },
        reconnection: false,
        forceNew: true,
        timeout: 60_000,
        // passed through to `ws` by engine.io-client
        localAddress: this.#t.localAddress,
      } as Parameters<typeof io>[1]);
      this.#socket = socket;
      let opened = false;
      socket.on('connect', () => {
        opened = true;
        resolve();
      });
      socket.on('connect_error', (err) => {
        if (!opened) reject(err);
      });
      socket.on('disconnect', (reason) => {
        if (opened && !this.#closing) {
          this.#stats.unexpectedCloses += 1;
          this.#stats.closeCodes[reason] = (this.#stats.closeCodes[reason] ?? 0) + 1;
        }
      });
      socket.onAny((name: string, payload: { task_id?: string; seq?: number; at?: number }) => {
        this.#rec.event(this.subs.get(payload?.task_id ?? ''), name, payload?.seq ?? -1, payload?.at ?? 0);
      });
    });
  }

  join(sub: Sub): Promise<boolean> {
    this.subs.set(sub.taskId, sub);
    return new Promise((resolve) => {
      sub.onJoin = resolve;
      sub.joinSentAt = Date.now();
      this.#socket!.emit(
        'join',
        sub.taskId,
        (reply: { ok: boolean; reason?: string; task?: { status: string; seq: number } }) => {
          if (!reply?.ok) this.subs.delete(sub.taskId);
          this.#rec.joinReply(
            sub,
            Boolean(reply?.ok),
            reply?.task?.status ?? '',
            reply?.task?.seq ?? 0,
            reply?.reason,
          );
        },
      );
    });
  }

  leave(sub: Sub): void {
    if (this.subs.get(sub.taskId) !== sub) return;
    this.subs.delete(sub.taskId);
    this.#socket?.emit('leave', sub.taskId);
  }

  heartbeat(): void {
    // Socket.IO's heartbeat is server-driven (engine.io ping/pong): nothing to send.
  }

  close(): Promise<void> {
    this.#closing = true;
    this.#socket?.disconnect();
    return Promise.resolve();
  }
}

export function makeConn(target: ConnTarget, rec: Recorder, stats: ConnStats): Conn {
  if (target.mode === 'socketio') return new SocketIoConn(target, rec, stats);
  return target.lean ? new LeanPhoenixConn(target, rec, stats) : new PhoenixConn(target, rec, stats);
}

/** ws's framing (not in its types): Sender.frame builds a masked client frame. */
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender;
const OP_TEXT = 1;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

function clientFrame(opcode: number, data: Buffer): Buffer {
  const parts = Sender.frame(data, { fin: true, opcode, mask: true, readOnly: false, rsv1: false });
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * Every lean connection reads into this one buffer (`onread`: no Readable stream, no allocation
 * per read); a frame split across reads is copied out into the connection's own `partial`.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/**
 * The Phoenix V2 client of the fanout generator at its cheapest: a net socket read through
 * `onread` into a shared buffer, the upgrade request and the server's unmasked frames read here,
 * and the outgoing frames (joins, heartbeats, close) framed and masked by ws's Sender. Only what
 * a taskwire server sends is handled: text frames, ping, close; no fragments, no extensions.
 */
export class LeanPhoenixConn extends PhoenixChannelConn implements Conn {
  #socket: net.Socket | null = null;
  #upgraded = false;
  #closing = false;
  #partial: Buffer | null = null;
  #closed: Promise<void> | null = null;
  #onOpen: ((err?: Error) => void) | null = null;

  cut(): Promise<void> {
    this.#closing = true;
    this.#socket?.destroy();
    return this.#closed ?? Promise.resolve();
  }

  open(): Promise<void> {
    const url = new URL(this.t.url);
    const path = `/socket/websocket?token=${encodeURIComponent(this.t.token)}&vsn=2.0.0`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#onOpen?.(new Error('upgrade timed out')), 60_000);
      this.#onOpen = (err) => {
        this.#onOpen = null;
        clearTimeout(timer);
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve();
      };
      const socket = net.connect({
        host: url.hostname,
        port: Number(url.port),
        localAddress: this.t.localAddress,
        noDelay: true,
        onread: {
          buffer: READ_BUFFER,
          callback: (n: number, buf: Uint8Array) => {
            this.#read(n, buf as Buffer);
            return true;
          },
        },
      });
      this.#socket = socket;
      this.#closed = new Promise((done) => {
        socket.on('close', () => {
          if (this.#onOpen) this.#onOpen(new Error('closed before the upgrade'));
          else if (!this.#closing) {
            this.stats.unexpectedCloses += 1;
            this.stats.closeCodes.lean = (this.stats.closeCodes.lean ?? 0) + 1;
            for (const sub of this.pending.values()) this.rec.joinReply(sub, false, '', 0, 'closed');
            this.pending.clear();
          }
          done();
        });
      });
      socket.on('error', (err) => this.#onOpen?.(err));
      socket.on('connect', () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
    });
  }

  /** onread: `n` bytes at the start of the shared buffer. Returning nothing keeps reading. */
  #read(n: number, shared: Buffer): void {
    let buf = shared.subarray(0, n);
    if (this.#partial) {
      buf = Buffer.concat([this.#partial, buf]);
      this.#partial = null;
    }
    let at = 0;
    if (!this.#upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        this.#partial = Buffer.from(buf);
        return;
      }
      const status = buf.toString('latin1', 0, buf.indexOf('\r\n'));
      if (!status.startsWith('HTTP/1.1 101')) {
        this.#onOpen?.(new Error(`upgrade refused: ${status}`));
        return;
      }
      this.#upgraded = true;
      this.#onOpen?.();
      at = end + 4;
    }
    while (at < buf.length) {
      if (buf.length - at < 2) break;
      const opcode = buf[at] & 0x0f;
      let len = buf[at + 1] & 0x7f;
      let head = 2;
      if (len === 126) {
        if (buf.length - at < 4) break;
        len = buf.readUInt16BE(at + 2);
        head = 4;
      } else if (len === 127) {
        if (buf.length - at < 10) break;
        len = Number(buf.readBigUInt64BE(at + 2));
        head = 10;
      }
      if (buf.length - at < head + len) break;
      const payload = buf.subarray(at + head, at + head + len);
      at += head + len;
      if (opcode === OP_TEXT) phoenixFrame(payload, this.subs, this.pending, this.rec, this.stats);
      else if (opcode === OP_PING) this.#socket?.write(clientFrame(OP_PONG, Buffer.from(payload)));
      else if (opcode === OP_CLOSE) {
        if (!this.#closing) this.#socket?.end(clientFrame(OP_CLOSE, Buffer.from(payload.subarray(0, 2))));
        else this.#socket?.end();
      }
    }
    // An incomplete frame waits for the next read (the shared buffer is reused: copy it).
    if (at < buf.length) this.#partial = Buffer.from(buf.subarray(at));
  }

  protected send(text: string): void {
    const socket = this.#socket;
    if (socket && this.#upgraded && !this.#closing && socket.writable)
      socket.write(clientFrame(OP_TEXT, Buffer.from(text)));
  }

  close(): Promise<void> {
    const socket = this.#socket;
    if (!socket) return Promise.resolve();
    const wasClosing = this.#closing;
    this.#closing = true;
    if (!wasClosing && this.#upgraded && socket.writable) {
      const code = Buffer.from([0x03, 0xe9]); // 1001 going away
      socket.write(clientFrame(OP_CLOSE, code));
    }
    const timer = setTimeout(() => socket.destroy(), 5000);
    return this.#closed!.then(() => clearTimeout(timer));
  }
}
