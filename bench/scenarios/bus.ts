// bus: the cluster bus's transports compared across two processes on this machine. For each of
// postgres, nats, redis: a publisher process offers ~250-byte task events to a subscriber process,
// at a fixed rate and as fast as a window of unreceived messages allows. Figures: delivered
// messages/s, end-to-end latency (monotonic clock stamped in the message), CPU per message in the
// publisher, the subscriber and the engine (/proc), messages per engine frame, lost and reordered.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { closePool, createPool, migrate } from '../../src/db/index.ts';
import type { FinalResult, RunCmd, StartCmd, WindowResult } from '../generator/bus-node.ts';
import { bool, int, ms, str, UsageError } from '../lib/args.ts';
import { type EngineProcess, startNatsServer, startRedisServer } from '../lib/engines.ts';
import { createDatabase } from '../lib/pg.ts';
import {
  type Child,
  CpuMeter,
  cpuByPid,
  cpuMs,
  machineBusyPct,
  sleep,
  spawnNode,
  waitFor,
} from '../lib/procs.ts';
import type { Figures } from '../lib/report.ts';
import { summarize } from '../lib/stats.ts';
import { BENCH_DIR, REDIS_URL, RESULTS_DIR, ROOT } from '../lib/targets.ts';
import { defineScenario } from './common.ts';

const BUS_NODE = path.join(BENCH_DIR, 'generator/bus-node.ts');
/** Other work above this share of one core during a pair's window makes it "disturbed" (as run.ts). */
const DISTURBED_PCT = 25;

/** Waits (up to a minute) until the machine is less than 25 % busy. */
async function quiet(log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + 60_000;
  let busy = await machineBusyPct(1000);
  if (busy >= DISTURBED_PCT) log(`the machine is ${busy.toFixed(0)}% busy with other work; waiting`);
  while (busy >= DISTURBED_PCT && Date.now() < deadline) busy = await machineBusyPct(2000);
}
const KINDS = ['postgres', 'nats', 'redis'] as const;
type Kind = (typeof KINDS)[number];
const TASKWIRE_ROOT = process.env.BENCH_TASKWIRE_ROOT
  ? path.resolve(process.env.BENCH_TASKWIRE_ROOT)
  : undefined;

interface Engine {
  transport: Omit<StartCmd['transport'], 'kind' | 'namespace'>;
  /** CPU time (ms) used so far by the engine's processes that serve this run. */
  cpuMs(): Promise<number>;
  /** What the engine CPU figure covers. */
  what: string;
  dispose(): Promise<void>;
}

async function postgresEngine(): Promise<Engine> {
  const db = await createDatabase();
  const pool = createPool({ connectionString: db.url, max: 3, timeoutMs: 10_000 });
  try {
    await migrate(pool);
  } finally {
    await closePool(pool);
  }
  const admin = new pg.Client({ connectionString: db.url, application_name: 'taskwire-bench' });
  await admin.connect();
  return {
    transport: { databaseUrl: db.url },
    what: "the two bus connections' PostgreSQL backends (pg_stat_activity, application_name taskwire-bus)",
    async cpuMs() {
      const { rows } = await admin.query<{ pid: number }>(
        "select pid from pg_stat_activity where datname = $1 and application_name = 'taskwire-bus'",
        [db.name],
      );
      return rows.reduce((sum, r) => sum + cpuMs(r.pid), 0);
    },
    async dispose() {
      await admin.end().catch(() => {});
      await db.drop();
    },
  };
}

function processEngine(
  kind: 'nats' | 'redis',
  engine: EngineProcess | undefined,
  sharedUrl: string,
  comm: string,
): Engine {
  return {
    transport:
      kind === 'nats' ? { natsUrl: engine?.url ?? sharedUrl } : { redisUrl: engine?.url ?? sharedUrl },
    what: engine
      ? `a private ${comm} (pid ${engine.pid()})`
      : `every ${comm} process on the machine (shared)`,
    async cpuMs() {
      if (engine) return cpuMs(engine.pid());
      let sum = 0;
      for (const v of cpuByPid(comm).values()) sum += v;
      return sum;
    },
    dispose: async () => engine?.dispose(),
  };
}

async function startEngine(kind: Kind, shared: boolean): Promise<Engine> {
  if (kind === 'postgres') return postgresEngine();
  const natsUrl = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
  if (kind === 'nats')
    return processEngine('nats', shared ? undefined : await startNatsServer(), natsUrl, 'nats-server');
  const redis = shared ? undefined : await startRedisServer({ tcp: true });
  return processEngine('redis', redis, REDIS_URL, 'redis-server');
}

interface RunOptions {
  rate: number;
  window: number;
  size: number;
  durationMs: number;
  warmupMs: number;
}

async function runPair(
  kind: Kind,
  engine: Engine,
  o: RunOptions,
  runId: string,
  log: (line: string) => void,
): Promise<Figures> {
  mkdirSync(path.join(RESULTS_DIR, 'logs'), { recursive: true });
  const label = `${kind}-${o.rate > 0 ? o.rate : 'max'}`;
  const spawnRole = (role: string) =>
    spawnNode(BUS_NODE, [], {
      env: { ...process.env, NODE_OPTIONS: '' },
      logFile: path.join(RESULTS_DIR, 'logs', `${runId}-bus-${label}-${role}.log`),
      cwd: ROOT,
    });
  const sub = spawnRole('subscriber');
  const pub = spawnRole('publisher');
  try {
    const transport = { kind, namespace: `bench${randomBytes(4).toString('hex')}`, ...engine.transport };
    const channel = 'task-events';
    const start = (child: Child, role: StartCmd['role']) =>
      child.request(
        { cmd: 'start', role, transport, channel, root: TASKWIRE_ROOT } satisfies StartCmd,
        30_000,
      );
    await start(sub, 'subscriber');
    await start(pub, 'publisher');
    sub.onNote((note) => {
      if (note.note === 'received' && pub.proc.connected)
        pub.proc.send({ cmd: 'acked', received: note.received });
    });
    log(`bus ${label}: warm-up ${o.warmupMs} ms, then ${o.durationMs} ms measured`);
    const running = pub.request<{ published: number }>(
      {
        cmd: 'run',
        channel,
        rate: o.rate,
        window: o.window,
        size: o.size,
        durationMs: o.warmupMs + o.durationMs + 500,
      } satisfies RunCmd,
      o.warmupMs + o.durationMs + 120_000,
    );
    await sleep(o.warmupMs);
    const meter = new CpuMeter(sub.pid, kind === 'postgres' ? ['postgres'] : []);
    const engine0 = await engine.cpuMs();
    const runner0 = process.cpuUsage();
    meter.start();
    await Promise.all([sub.request({ cmd: 'window-start' }), pub.request({ cmd: 'window-start' })]);
    await sleep(o.durationMs);
    const [sw, pw] = await Promise.all([
      sub.request<WindowResult>({ cmd: 'window-stop' }),
      pub.request<WindowResult>({ cmd: 'window-stop' }),
    ]);
    const m = meter.stop();
    const runner = process.cpuUsage(runner0);
    const runnerPct = ((runner.user + runner.system) / 1000 / m.wallMs) * 100;
    const engineMs = (await engine.cpuMs()) - engine0;
    await running;
    // Everything published must arrive (or be counted lost) before the next run.
    const pubFinal = await pub.request<FinalResult>({ cmd: 'final' });
    let subFinal = await sub.request<FinalResult>({ cmd: 'final' });
    await waitFor(
      'the subscriber to receive the backlog',
      async () => {
        subFinal = await sub.request<FinalResult>({ cmd: 'final' });
        return (subFinal.received ?? 0) + (subFinal.lost ?? 0) >= (pubFinal.published ?? 0)
          ? true
          : undefined;
      },
      60_000,
      200,
    ).catch(() => log(`bus ${label}: the backlog did not drain in 60 s`));
    const lat = summarize(Array.from(sw.latencyUs ?? [], (us) => us / 1000));
    const pubPct = (pw.cpuUs / 1000 / m.wallMs) * 100;
    const enginePct = (engineMs / m.wallMs) * 100;
    const pgAllPct = m.helpers.postgres ?? 0;
    const delivered = sw.messages;
    const perMsg = (cpuUsTotal: number, n: number) => (n > 0 ? cpuUsTotal / n : Number.NaN);
    const pubCpu = perMsg(pw.cpuUs, pw.messages);
    const subCpu = perMsg(sw.cpuUs, delivered);
    const engineCpu = perMsg(engineMs * 1000, delivered);
    const missing = Math.max(0, (pubFinal.published ?? 0) - (subFinal.received ?? 0));
    const s = pubFinal.stats;
    return {
      offered_per_s: o.rate > 0 ? o.rate : 'max',
      published_per_s: (pw.messages / pw.wallMs) * 1000,
      delivered_per_s: (delivered / sw.wallMs) * 1000,
      p50_ms: lat.p50,
      p99_ms: lat.p99,
      max_ms: lat.max,
      pub_cpu_us_per_msg: pubCpu,
      sub_cpu_us_per_msg: subCpu,
      engine_cpu_us_per_msg: engineCpu,
      total_cpu_us_per_msg: pubCpu + subCpu + engineCpu,
      pub_cpu_pct: pubPct,
      sub_cpu_pct: m.cpuPct,
      engine_cpu_pct: enginePct,
      msgs_per_frame: s.framesOut > 0 ? (s.messagesOut - (s.unsent ?? 0)) / s.framesOut : Number.NaN,
      lost: missing,
      reordered: subFinal.reordered ?? 0,
      others_cpu_pct: Math.max(
        0,
        m.machinePct -
          m.irqPct -
          m.cpuPct -
          pubPct -
          runnerPct -
          (kind === 'postgres' ? pgAllPct : enginePct),
      ),
      irq_cpu_pct: m.irqPct,
    };
  } finally {
    await Promise.all(
      [sub, pub].map(async (c) => {
        await c.request({ cmd: 'stop' }, 10_000).catch(() => {});
        await c.stop(3000);
      }),
    );
  }
}

const COLUMNS: Array<[string, string]> = [
  ['offered_per_s', 'offered/s'],
  ['delivered_per_s', 'delivered/s'],
  ['p50_ms', 'p50 ms'],
  ['p99_ms', 'p99 ms'],
  ['max_ms', 'max ms'],
  ['pub_cpu_us_per_msg', 'pub µs/msg'],
  ['sub_cpu_us_per_msg', 'sub µs/msg'],
  ['engine_cpu_us_per_msg', 'engine µs/msg'],
  ['total_cpu_us_per_msg', 'total µs/msg'],
  ['msgs_per_frame', 'msgs/frame'],
  ['lost', 'lost'],
  ['others_cpu_pct', 'others %'],
];

export const bus = defineScenario({
  name: 'bus',
  summary:
    'bus transports across two processes: delivered msgs/s, p50/p99, CPU per message (postgres, nats, redis)',
  flags: {
    transports: str('postgres,nats,redis', 'transports to measure, comma-separated'),
    rate: int(20_000, 'offered messages/s of the fixed-rate run (0: skip it)'),
    max: bool(true, 'also run as fast as --window allows'),
    window: int(10_000, 'max-rate run: messages published but not yet received, at most'),
    duration: ms(10_000, 'measured window of each run'),
    warmup: ms(2000, 'publishing before the window opens'),
    size: int(250, 'message size in bytes (a task progress event)'),
    shared: bool(
      false,
      "use the machine's NATS and Redis (BENCH_NATS_URL, BENCH_REDIS_URL) instead of private ones",
    ),
    pairRetries: int(
      3,
      'measure one transport/run pair again (up to this many times) when other work used > 25% of a core; the least disturbed is kept',
    ),
  },
  goals: (f) =>
    f.rate === 20_000
      ? (['nats', 'redis'] as const)
          .filter((k) => f.transports.split(',').includes(k))
          .map((k) => ({
            name: `${k}: p99 <= 20 ms at 20,000 msgs/s`,
            target: 'taskwire' as const,
            figure: `${k}_fixed_p99_ms`,
            op: '<=' as const,
            value: 20,
          }))
      : [],
  ratioNames: [],
  table(figures) {
    const rows = [['transport', 'run', ...COLUMNS.map(([, h]) => h)]];
    for (const kind of KINDS)
      for (const run of ['fixed', 'max']) {
        if (figures[`${kind}_${run}_delivered_per_s`] === undefined) continue;
        rows.push([kind, run, ...COLUMNS.map(([k]) => show(figures[`${kind}_${run}_${k}`]))]);
      }
    return rows;
  },
  async measure(target, f, ctx) {
    if (target !== 'taskwire')
      throw new UsageError('bus compares transports: it has no peer (--target taskwire)');
    const kinds = f.transports.split(',').map((k) => k.trim());
    for (const k of kinds)
      if (!KINDS.includes(k as Kind))
        throw new UsageError(`--transports: ${k} is not one of ${KINDS.join(', ')}`);
    const runs: Array<{ name: string; rate: number }> = [];
    if (f.rate > 0) runs.push({ name: 'fixed', rate: f.rate });
    if (f.max) runs.push({ name: 'max', rate: 0 });
    if (runs.length === 0) throw new UsageError('nothing to run: --rate 0 and --no-max');
    const figures: Figures = {};
    const notes: string[] = [];
    let others = 0;
    for (const kind of kinds as Kind[]) {
      const engine = await startEngine(kind, f.shared);
      notes.push(`${kind}: engine CPU is ${engine.what}`);
      try {
        for (const run of runs) {
          let r: Figures | undefined;
          for (let attempt = 0; attempt <= f.pairRetries; attempt++) {
            if (attempt > 0) await quiet(ctx.log);
            const got = await runPair(
              kind,
              engine,
              { rate: run.rate, window: f.window, size: f.size, durationMs: f.duration, warmupMs: f.warmup },
              ctx.runId,
              ctx.log,
            );
            if (!r || Number(got.others_cpu_pct) < Number(r.others_cpu_pct)) r = got;
            if (Number(got.others_cpu_pct) <= DISTURBED_PCT) break;
            ctx.log(
              `bus ${kind} ${run.name}: other work used ${Number(got.others_cpu_pct).toFixed(0)}% of a core`,
            );
          }
          if (!r) continue;
          for (const [k, v] of Object.entries(r)) figures[`${kind}_${run.name}_${k}`] = v;
          others = Math.max(others, Number(r.others_cpu_pct));
        }
      } finally {
        await engine.dispose();
      }
    }
    figures.others_cpu_pct = others;
    notes.push(
      'latency = receive time - publish time, both from the same monotonic clock (process.hrtime) in two processes',
      `max run: the publisher keeps at most ${f.window} messages published and not yet received (credit relayed by the runner every 5 ms), so its latency is queueing in that window`,
      'subscriber CPU includes reading two numbers out of each message (no JSON.parse); publisher CPU includes building each message',
    );
    return { figures, notes };
  },
});

function show(v: Figures[string] | undefined): string {
  if (v === undefined || v === null) return '-';
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? String(Math.round(v)) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}
