// The generator's client connections: raw Phoenix V2 frames over `ws` (taskwire), and a
// Socket.IO client (the peer), behind one small interface. Inbound broadcasts are scanned in
// place (topic, event, seq, at) instead of JSON-parsed, so the generator stays cheap; every
// event goes to the Recorder, which checks seq order per subscription.
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

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

  constructor(taskId: string) {
    this.taskId = taskId;
  }
}

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
    if (this.firstRecv === 0) {
      this.firstRecv = now;
      this.firstAt = at;
    }
    this.lastRecv = now;
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
  open(): Promise<void>;
  join(sub: Sub): Promise<boolean>;
  leave(sub: Sub): void;
  heartbeat(): void;
  close(): Promise<void>;
}

export interface ConnTarget {
  mode: Mode;
  /** ws://host:port (phoenix) or http://host:port (socketio) */
  url: string;
  token: string;
  localAddress?: string;
}

const BROADCAST = Buffer.from('[null,null,"task:');
const SEQ_KEY = Buffer.from('"seq":');
const AT_KEY = Buffer.from(',"at":');
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

/** A raw Phoenix V2 client on `ws`: joins, leaves, heartbeats, scanned broadcasts. */
export class PhoenixConn implements Conn {
  readonly subs = new Map<string, Sub>();
  readonly #pending = new Map<string, Sub>();
  readonly #t: ConnTarget;
  readonly #rec: Recorder;
  readonly #stats: ConnStats;
  #ws: WebSocket | null = null;
  #ref = 0;
  #closing = false;
  #closed: Promise<void> | null = null;

  constructor(target: ConnTarget, rec: Recorder, stats: ConnStats) {
    this.#t = target;
    this.#rec = rec;
    this.#stats = stats;
  }

  open(): Promise<void> {
    const url = `${this.#t.url}/socket/websocket?token=${encodeURIComponent(this.#t.token)}&vsn=2.0.0`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        localAddress: this.#t.localAddress,
        handshakeTimeout: 60_000,
      });
      this.#ws = ws;
      let opened = false;
      this.#closed = new Promise((done) => {
        ws.on('close', (code) => {
          if (opened && !this.#closing) {
            this.#stats.unexpectedCloses += 1;
            this.#stats.closeCodes[code] = (this.#stats.closeCodes[code] ?? 0) + 1;
            for (const sub of this.#pending.values())
              this.#rec.joinReply(sub, false, '', 0, `closed ${code}`);
            this.#pending.clear();
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
    if (data.compare(BROADCAST, 0, BROADCAST.length, 0, BROADCAST.length) === 0) {
      const topicEnd = data.indexOf(QUOTE, BROADCAST.length);
      const taskId = data.toString('latin1', BROADCAST.length, topicEnd);
      const eventStart = topicEnd + 3;
      const eventEnd = data.indexOf(QUOTE, eventStart);
      const name = data.toString('latin1', eventStart, eventEnd);
      const s = data.indexOf(SEQ_KEY, eventEnd);
      const a = data.indexOf(AT_KEY, eventEnd);
      this.#rec.event(
        this.subs.get(taskId),
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
        this.#stats.heartbeatsOk += 1;
        return;
      }
      const sub = ref === null ? undefined : this.#pending.get(ref);
      if (!sub) return; // leave replies
      this.#pending.delete(ref!);
      if (payload?.status === 'ok') {
        const task = payload.response?.task ?? {};
        this.#rec.joinReply(sub, true, String(task.status ?? ''), Number(task.seq ?? 0));
      } else {
        this.subs.delete(sub.taskId);
        this.#rec.joinReply(sub, false, '', 0, JSON.stringify(payload?.response ?? payload));
      }
    } else if (event === 'phx_error') {
      const sub = this.subs.get(String(topic).slice(5));
      if (sub && !sub.done) {
        sub.failed = true;
        sub.failReason = 'phx_error';
      }
    }
  }

  join(sub: Sub): Promise<boolean> {
    const ref = String(++this.#ref);
    this.subs.set(sub.taskId, sub);
    this.#pending.set(ref, sub);
    return new Promise((resolve) => {
      sub.onJoin = resolve;
      sub.joinSentAt = Date.now();
      this.#send(`["${ref}","${ref}","task:${sub.taskId}","phx_join",{}]`);
    });
  }

  leave(sub: Sub): void {
    if (this.subs.get(sub.taskId) !== sub) return;
    this.subs.delete(sub.taskId);
    const ref = String(++this.#ref);
    this.#send(`[null,"${ref}","task:${sub.taskId}","phx_leave",{}]`);
  }

  heartbeat(): void {
    this.#stats.heartbeatsSent += 1;
    this.#send(`[null,"${++this.#ref}","phoenix","heartbeat",{}]`);
  }

  #send(frame: string): void {
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
  return target.mode === 'phoenix'
    ? new PhoenixConn(target, rec, stats)
    : new SocketIoConn(target, rec, stats);
}
