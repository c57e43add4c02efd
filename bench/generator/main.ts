// The load generator: a separate process (forked by bench/run.ts, IPC for commands) so its CPU
// never competes inside the server's event loop. It holds client connections (raw Phoenix V2
// frames, or Socket.IO for the peer), submits tasks over HTTP, and reports what it saw plus its
// own CPU (process.cpuUsage) so a reader can check it was not the bottleneck.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { HttpClient } from '../lib/http.ts';
import { type Conn, type ConnStats, type Mode, makeConn, Recorder, Sub } from './conns.ts';
import { openLoop } from './open-loop.ts';

export interface SocketPlan {
  /** Index into `tokens`. */
  token: number;
  /** Task ids to join on this socket. */
  tasks: string[];
  /** Streams: join with `output_from` (this index), and check every output chunk. */
  outputFrom?: number;
}

export interface ConnectJob {
  cmd: 'connect';
  mode: Mode;
  url: string;
  tokens: string[];
  sockets: SocketPlan[];
  /** Sockets opened (and joined) at once. */
  concurrency: number;
  /** Spread source addresses over 127.0.0.1 .. 127.0.0.<sourceIps>. */
  sourceIps: number;
  /** Global index of this process's first socket (spreads source addresses across processes). */
  indexOffset: number;
  heartbeatMs: number;
  sampleLatency: boolean;
  /** phoenix mode: the lean client (see LeanPhoenixConn) instead of `ws`. */
  lean?: boolean;
}

export interface ConnectResult {
  opened: number;
  connectFailures: number;
  joins: number;
  joinFailures: number;
  connectMs: Float64Array;
  joinMs: Float64Array;
  errors: Record<string, number>;
  wallMs: number;
  cpuMs: number;
}

export interface CollectResult {
  subs: number;
  subsComplete: number;
  subsWithGaps: number;
  subsWithDups: number;
  missing: number;
  dups: number;
  events: number;
  byName: Record<string, number>;
  unknown: number;
  firstRecv: number;
  lastRecv: number;
  firstAt: number;
  latency: Float64Array;
  /** Per seq: worst latency, summed latency and count (the Recorder's). */
  seqMax: Float64Array;
  seqSum: Float64Array;
  seqCount: Float64Array;
  timedOut: boolean;
  wallMs: number;
  cpuMs: number;
  /** Of cpuMs: user (JavaScript, ws parsing) and system (the kernel: reads, epoll). */
  cpuUserMs: number;
  cpuSysMs: number;
  /** This process's event-loop delay over the collect window, ms (10 ms sampling timer). */
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  stats: ConnStats;
  /** Streams: output chunks received, missing, duplicated, whose text names another index. */
  outputChunks: number;
  outputMissing: number;
  outputDups: number;
  outputBad: number;
}

export interface CutResult {
  cut: number;
  rejoins: number;
  rejoinFailures: number;
  /** From the first cut to the last rejoin answered. */
  wallMs: number;
}

export interface VerifyResult {
  checked: number;
  /** Tasks whose assembled text differs from the stored output (GET …/output?format=json). */
  mismatched: number;
  /** Chunks the client assembled / the server stored, over every task. */
  clientChunks: number;
  storedChunks: number;
  sample: string;
}

export interface ThroughputJob {
  cmd: 'throughput';
  mode: Mode;
  httpUrl: string;
  wsUrl: string;
  token: string;
  n: number;
  warmup: number;
  concurrency: number;
  sockets: number;
  /** Tasks per second (open loop); 0 = closed loop at `concurrency`. */
  rate: number;
  body: Record<string, unknown>;
  taskTimeoutMs: number;
  /**
   * Closed loop: a lane that has waited this long for a task's end moves on to the next task;
   * the task is still watched (and counted if it ends) until taskTimeoutMs, or until
   * 2 x laneReleaseMs after the last lane is done, whichever comes first. 0: lanes wait.
   * So a completion the server never sends costs a lane this long, not the whole timeout.
   */
  laneReleaseMs?: number;
  /** phoenix mode: the lean client (see LeanPhoenixConn) instead of `ws`. */
  lean?: boolean;
  /**
   * After the warm-up has drained, send the note `{note: 'warmed'}` and wait for the command
   * `resume` before the measured phase (the harness maintains the database in between).
   */
  pauseAfterWarmup?: boolean;
}

export interface ThroughputResult {
  measured: number;
  accepted: number;
  completed: number;
  failures: number;
  errors: Record<string, number>;
  acceptMs: Float64Array;
  doneMs: Float64Array;
  /** When each task of `doneMs` was due (ms since the epoch), in the same order. */
  doneDue: Float64Array;
  /** Date.now() of the first measured submission, the last accept and the last completion. */
  start: number;
  lastAccept: number;
  lastDone: number;
  /** Open loop: submissions that waited for a free slot. */
  late: number;
  /** Closed loop with laneReleaseMs: tasks a lane stopped waiting for. */
  released: number;
  wallMs: number;
  cpuMs: number;
  stats: ConnStats;
}

const rec = new Recorder();
const stats: ConnStats = { heartbeatsSent: 0, heartbeatsOk: 0, unexpectedCloses: 0, closeCodes: {} };
let conns: Conn[] = [];
let subs: Sub[] = [];
let heartbeatTimer: NodeJS.Timeout | undefined;

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function countError(errors: Record<string, number>, err: unknown): void {
  const key = (err instanceof Error ? err.message : String(err)).slice(0, 120);
  errors[key] = (errors[key] ?? 0) + 1;
}

/** One shared timer sends every connection a heartbeat once per `everyMs`, spread over the period. */
function startHeartbeats(everyMs: number): void {
  clearInterval(heartbeatTimer);
  if (everyMs <= 0) return;
  const tickMs = 100;
  let cursor = 0;
  let carry = 0;
  heartbeatTimer = setInterval(() => {
    if (conns.length === 0) return;
    carry += (conns.length * tickMs) / everyMs;
    let n = Math.floor(carry);
    carry -= n;
    while (n-- > 0) {
      conns[cursor % conns.length].heartbeat();
      cursor++;
    }
  }, tickMs);
}

async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

async function connect(job: ConnectJob): Promise<ConnectResult> {
  const t0 = performance.now();
  const c0 = cpuNow();
  rec.reset(job.sampleLatency);
  const connectMs: number[] = [];
  const joinMs: number[] = [];
  const errors: Record<string, number> = {};
  let opened = 0;
  let connectFailures = 0;
  let joins = 0;
  let joinFailures = 0;
  startHeartbeats(job.heartbeatMs);
  await pool(job.sockets.length, job.concurrency, async (i) => {
    const plan = job.sockets[i];
    const g = job.indexOffset + i;
    const conn = makeConn(
      {
        mode: job.mode,
        lean: job.lean,
        url: job.url,
        token: job.tokens[plan.token],
        localAddress: job.sourceIps > 1 ? `127.0.0.${1 + (g % job.sourceIps)}` : undefined,
      },
      rec,
      stats,
    );
    const start = performance.now();
    try {
      await conn.open();
    } catch (err) {
      connectFailures += 1;
      countError(errors, err);
      return;
    }
    connectMs.push(performance.now() - start);
    opened += 1;
    conns.push(conn);
    const mine = plan.tasks.map((id) => {
      const sub = new Sub(id);
      sub.outputFrom = plan.outputFrom;
      return sub;
    });
    subs.push(...mine);
    const oks = await Promise.all(mine.map((sub) => conn.join(sub)));
    mine.forEach((sub, k) => {
      joins += 1;
      if (oks[k]) joinMs.push(sub.joinMs);
      else {
        joinFailures += 1;
        countError(errors, `join: ${sub.failReason}`);
      }
    });
  });
  return {
    opened,
    connectFailures,
    joins,
    joinFailures,
    connectMs: Float64Array.from(connectMs),
    joinMs: Float64Array.from(joinMs),
    errors,
    wallMs: performance.now() - t0,
    cpuMs: cpuNow() - c0,
  };
}

/** Waits until every joined subscription saw a terminal event (or the timeout), then reports. */
async function collect(job: { timeoutMs: number }): Promise<CollectResult> {
  const t0 = performance.now();
  const c0 = cpuNow();
  const u0 = process.cpuUsage();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const live = subs.filter((s) => s.joined && !s.failed);
  const pending = live.filter((s) => !s.done);
  let timedOut = false;
  if (pending.length > 0) {
    await new Promise<void>((resolve) => {
      let left = pending.length;
      const timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, job.timeoutMs);
      for (const sub of pending) {
        sub.onDone = () => {
          sub.onDone = null;
          if (--left === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
      }
    });
  }
  let missing = 0;
  let dups = 0;
  let subsWithGaps = 0;
  let subsWithDups = 0;
  let subsComplete = 0;
  let outputChunks = 0;
  let outputMissing = 0;
  let outputDups = 0;
  let outputBad = 0;
  for (const s of live) {
    outputChunks += s.outputChunks;
    outputMissing += s.outputMissing;
    outputDups += s.outputDups;
    outputBad += s.outputBad;
    missing += s.missing;
    dups += s.dups;
    if (s.gaps > 0) subsWithGaps += 1;
    if (s.dups > 0) subsWithDups += 1;
    if (s.done) subsComplete += 1;
  }
  const result: CollectResult = {
    subs: live.length,
    subsComplete,
    subsWithGaps,
    subsWithDups,
    missing,
    dups,
    events: rec.events,
    byName: rec.byName,
    unknown: rec.unknown,
    firstRecv: rec.firstRecv,
    lastRecv: rec.lastRecv,
    firstAt: rec.firstAt,
    latency: Float64Array.from(rec.latency ?? []),
    seqMax: Float64Array.from(rec.seqMax),
    seqSum: Float64Array.from(rec.seqSum),
    seqCount: Float64Array.from(rec.seqCount),
    timedOut,
    wallMs: performance.now() - t0,
    cpuMs: cpuNow() - c0,
    cpuUserMs: 0,
    cpuSysMs: 0,
    loopDelayP50Ms: delay.percentile(50) / 1e6,
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    loopDelayMaxMs: delay.max / 1e6,
    stats: { ...stats },
    outputChunks,
    outputMissing,
    outputDups,
    outputBad,
  };
  delay.disable();
  const used = process.cpuUsage(u0);
  result.cpuUserMs = used.user / 1000;
  result.cpuSysMs = used.system / 1000;
  rec.reset(rec.latency !== null);
  return result;
}

/**
 * Cuts every connection at once (no close handshake, as a lost network), then opens each again and
 * rejoins its unfinished subscriptions, asking for output from the next chunk it lacks.
 */
async function cutAll(job: { concurrency: number }): Promise<CutResult> {
  const t0 = performance.now();
  const old = conns;
  conns = [];
  await Promise.all(old.map((c) => c.cut()));
  let rejoins = 0;
  let rejoinFailures = 0;
  await pool(old.length, Math.max(1, job.concurrency), async (i) => {
    const prev = old[i];
    const todo = [...prev.subs.values()].filter((sub) => !sub.done && !sub.failed);
    const conn = makeConn(prev.target, rec, stats);
    try {
      await conn.open();
    } catch {
      rejoinFailures += todo.length;
      return;
    }
    conns.push(conn);
    const oks = await Promise.all(
      todo.map((sub) => {
        if (sub.outputFrom !== undefined) sub.outputFrom = sub.outputNext;
        return conn.join(sub);
      }),
    );
    for (const ok of oks) {
      rejoins += 1;
      if (!ok) rejoinFailures += 1;
    }
  });
  return { cut: old.length, rejoins, rejoinFailures, wallMs: performance.now() - t0 };
}

/** Compares each stream's assembled text with the output the server stored. */
async function verify(job: { httpUrl: string; token: string }): Promise<VerifyResult> {
  const http = new HttpClient(job.httpUrl, { token: job.token, maxSockets: 8 });
  const streams = subs.filter((sub) => sub.outputFrom !== undefined);
  let mismatched = 0;
  let clientChunks = 0;
  let storedChunks = 0;
  let sample = '';
  await pool(streams.length, 8, async (i) => {
    const sub = streams[i];
    const res = await http.request('GET', `/api/tasks/${sub.taskId}/output?format=json`);
    const chunks: Array<{ data: unknown }> = res.body?.output ?? [];
    const stored = chunks.map((c) => String(c.data)).join('');
    clientChunks += sub.outputNext;
    storedChunks += chunks.length;
    if (stored !== sub.text) {
      mismatched += 1;
      if (!sample)
        sample = `${sub.taskId}: client ${sub.text.length} chars (next ${sub.outputNext}), stored ${stored.length} chars (${chunks.length} chunks, status ${res.status})`;
    }
  });
  http.close();
  return { checked: streams.length, mismatched, clientChunks, storedChunks, sample };
}

async function hold(job: { ms: number }): Promise<{ stats: ConnStats; wallMs: number; cpuMs: number }> {
  const t0 = performance.now();
  const c0 = cpuNow();
  await new Promise((r) => setTimeout(r, job.ms));
  return { stats: { ...stats }, wallMs: performance.now() - t0, cpuMs: cpuNow() - c0 };
}

async function closeAll(): Promise<{ closed: number }> {
  clearInterval(heartbeatTimer);
  const all = conns;
  conns = [];
  subs = [];
  await Promise.all(all.map((c) => c.close()));
  return { closed: all.length };
}

async function throughput(job: ThroughputJob): Promise<ThroughputResult> {
  const t0 = performance.now();
  const c0 = cpuNow();
  rec.reset(false);
  const http = new HttpClient(job.httpUrl, { token: job.token, maxSockets: job.concurrency });
  const errors: Record<string, number> = {};
  const socketCount = Math.max(1, job.sockets);
  const mine: Conn[] = [];
  for (let i = 0; i < socketCount; i++) {
    const conn = makeConn(
      {
        mode: job.mode,
        url: job.mode === 'phoenix' ? job.wsUrl : job.httpUrl,
        token: job.token,
        lean: job.lean,
      },
      rec,
      stats,
    );
    await conn.open();
    mine.push(conn);
  }
  conns.push(...mine);
  startHeartbeats(30_000);
  const total = job.warmup + job.n;
  const acceptMs: number[] = [];
  const doneMs: number[] = [];
  const doneDue: number[] = [];
  let start = 0;
  let lastAccept = 0;
  let lastDone = 0;
  let accepted = 0;
  let completed = 0;
  let failures = 0;
  let late = 0;
  let released = 0;
  /** Tasks whose lane moved on, still watched until they end or time out. */
  const watched: Array<Promise<void>> = [];
  /** Released tasks not ended yet; set to -1 when the run stops watching them. */
  let unended = 0;

  const runOne = async (i: number, conn: Conn, scheduledAt: number): Promise<void> => {
    const measured = i >= job.warmup;
    if (i === job.warmup) start = scheduledAt;
    try {
      const res = await postTask(http, job.body);
      const tAccept = Date.now();
      if (measured) {
        accepted += 1;
        acceptMs.push(tAccept - scheduledAt);
        lastAccept = Math.max(lastAccept, tAccept);
      }
      const sub = new Sub(res);
      const joined = await conn.join(sub);
      if (!joined) throw new Error(`join refused: ${sub.failReason}`);
      if (!sub.done) {
        const ended = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('task did not finish in time')), job.taskTimeoutMs);
          sub.onDone = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        const releaseMs = job.rate <= 0 ? (job.laneReleaseMs ?? 0) : 0;
        if (releaseMs > 0) {
          let timer: NodeJS.Timeout | undefined;
          const release = new Promise<'released'>((resolve) => {
            timer = setTimeout(() => resolve('released'), releaseMs);
          });
          const first = await Promise.race([ended.then(() => 'ended' as const), release]).finally(() =>
            clearTimeout(timer),
          );
          if (first === 'released') {
            released += 1;
            unended += 1;
            watched.push(
              (async () => {
                try {
                  await ended;
                  if (unended < 0) return; // the run has stopped watching (counted below)
                  unended -= 1;
                  finish(sub, conn, measured, scheduledAt);
                } catch (err) {
                  if (unended < 0) return;
                  unended -= 1;
                  failures += 1;
                  countError(errors, err);
                }
              })(),
            );
            return;
          }
        } else await ended;
      }
      finish(sub, conn, measured, scheduledAt);
    } catch (err) {
      failures += 1;
      countError(errors, err);
    }
  };

  /** A task's end as the socket told it: completed, or a failure. */
  const finish = (sub: Sub, conn: Conn, measured: boolean, scheduledAt: number): void => {
    conn.leave(sub);
    if (sub.status !== 'completed') throw new Error(`task ended ${sub.status}`);
    if (measured) {
      completed += 1;
      doneMs.push(sub.doneAt - scheduledAt);
      doneDue.push(scheduledAt);
      lastDone = Math.max(lastDone, sub.doneAt);
    }
  };

  // The warm-up drains before the measured phase starts (open loop: see open-loop.ts), so the
  // measured tasks never queue behind it.
  const warmed = async (): Promise<void> => {
    if (!job.pauseAfterWarmup) return;
    const resumed = new Promise<void>((resolve) => {
      resumeWaiters.push(resolve);
    });
    send({ note: 'warmed' });
    await resumed;
  };
  if (job.rate <= 0) {
    const lanes = async (from: number, to: number): Promise<void> => {
      let next = from;
      await Promise.all(
        Array.from({ length: job.concurrency }, async (_, lane) => {
          const conn = mine[lane % mine.length];
          for (let i = next++; i < to; i = next++) await runOne(i, conn, Date.now());
        }),
      );
    };
    await lanes(0, job.warmup);
    await warmed();
    await lanes(job.warmup, total);
  } else {
    const phase = { rate: job.rate, concurrency: job.concurrency };
    const run = (i: number, dueAt: number) => runOne(i, mine[i % mine.length], dueAt);
    await openLoop({ ...phase, from: 0, to: job.warmup, run });
    await warmed();
    late = await openLoop({ ...phase, from: job.warmup, to: total, run });
  }
  if (unended > 0) {
    // Give released tasks a last chance, then count those still not ended as not seen to finish.
    const grace = 2 * (job.laneReleaseMs ?? 0);
    await Promise.race([Promise.all(watched), new Promise((r) => setTimeout(r, grace).unref())]);
    if (unended > 0) {
      failures += unended;
      errors['task did not finish in time'] = (errors['task did not finish in time'] ?? 0) + unended;
    }
    unended = -1;
  }
  http.close();
  return {
    measured: job.n,
    accepted,
    completed,
    failures,
    errors,
    acceptMs: Float64Array.from(acceptMs),
    doneMs: Float64Array.from(doneMs),
    doneDue: Float64Array.from(doneDue),
    start,
    lastAccept,
    lastDone,
    late,
    released,
    wallMs: performance.now() - t0,
    cpuMs: cpuNow() - c0,
    stats: { ...stats },
  };
}

async function postTask(http: HttpClient, body: Record<string, unknown>): Promise<string> {
  const res = await http.request('POST', '/api/tasks', body);
  if (res.status !== 201 || typeof res.body?.task_id !== 'string')
    throw new Error(`POST /api/tasks: ${res.status} ${JSON.stringify(res.body).slice(0, 80)}`);
  return res.body.task_id;
}

type Command =
  | ConnectJob
  | ThroughputJob
  | { cmd: 'collect'; timeoutMs: number }
  | { cmd: 'hold'; ms: number }
  | { cmd: 'close' }
  | { cmd: 'cut'; concurrency: number }
  | { cmd: 'verify'; httpUrl: string; token: string }
  | { cmd: 'resume' }
  | { cmd: 'ping' };

/** Throughput jobs paused after their warm-up (pauseAfterWarmup), until `resume`. */
const resumeWaiters: Array<() => void> = [];

async function handle(msg: Command): Promise<unknown> {
  switch (msg.cmd) {
    case 'connect':
      return connect(msg);
    case 'collect':
      return collect(msg);
    case 'hold':
      return hold(msg);
    case 'close':
      return closeAll();
    case 'cut':
      return cutAll(msg);
    case 'verify':
      return verify(msg);
    case 'throughput':
      return throughput(msg);
    case 'resume':
      for (const resume of resumeWaiters.splice(0)) resume();
      return { resumed: true };
    case 'ping':
      return { pid: process.pid };
    default:
      throw new Error(`unknown command ${(msg as { cmd: string }).cmd}`);
  }
}

if (!process.send) {
  console.error('bench/generator/main.ts is started by bench/run.ts');
  process.exit(2);
}
const send = process.send.bind(process);
process.on('message', (raw) => {
  const msg = raw as Command & { id: number };
  handle(msg).then(
    (result) => send({ replyTo: msg.id, result }),
    (err: unknown) => send({ replyTo: msg.id, error: err instanceof Error ? err.stack : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
// A clean exit on SIGTERM too, so that a --cpu-prof profile (BENCH_GEN_CPU_PROF) gets written.
process.on('SIGTERM', () => process.exit(0));
