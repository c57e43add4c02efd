// fanout: T tasks x S subscribers; every task runs the demo loop (K steps at interval I) behind
// a start gate, so all subscribers have joined before step 1. Figures: delivered events/s,
// latency (receive time - payload `at`) p50/p95/p99/max, and the check that every subscriber saw
// every seq after its join reply exactly once and in order, through the terminal event.
// --channels-per-socket packs that many subscriptions (distinct tasks) on one socket.

import pg from 'pg';
import type { CollectResult, SocketPlan } from '../generator/main.ts';
import { bool, type FlagSpec, type FlagValues, int, ms, str } from '../lib/args.ts';
import { type EngineProcess, startNatsServer, startRedisServer } from '../lib/engines.ts';
import { createDatabase } from '../lib/pg.ts';
import { CpuMeter, cpuMs, machineBusyPct, sleep, waitFor } from '../lib/procs.ts';
import type { Figures, Goal } from '../lib/report.ts';
import { createTasks, type RunningTarget, startTaskwire, type TargetName } from '../lib/targets.ts';
import { measureWriteFloor } from '../lib/write-floor.ts';
import {
  busCounters,
  busFigures,
  type Ctx,
  connectAll,
  cpuWindow,
  dbWritesAfterRun,
  defineScenario,
  generatorCount,
  MB,
  type Measured,
  mergeCounts,
  profiled,
  receiveTotals,
  socketsPerGenerator,
  sum,
  topErrors,
  withGenerators,
  withTarget,
} from './common.ts';

/**
 * Generator processes unless --gen-procs says otherwise: one per core. A single one reads up to
 * 1,000 frames per step in turn, and its own queueing set the p99 at half load (issue 14: 7 / 5 / 8
 * ms with one, 5 / 4 / 5 with two, alternating runs; at full load 26 / 28 against 18 / 10 ms).
 */
const FANOUT_GENERATORS = 2;

const FLAGS = {
  tasks: int(20, 'tasks (T)'),
  subs: int(100, 'subscribers per task (S)'),
  steps: int(100, 'demo steps per task (K)'),
  interval: ms(20, 'demo interval between steps (I)'),
  channelsPerSocket: int(1, 'subscriptions (distinct tasks) joined on one socket; at most --tasks'),
  gate: ms(0, 'time between creating the tasks and step 1 (0: sized from the socket count)'),
  connectConcurrency: int(100, 'sockets opened and joined at once'),
  genClient: str<'lean' | 'ws'>(
    'lean',
    "the generator's Phoenix client: lean (a net socket read with onread, ws's Sender for its own frames) or ws",
    ['lean', 'ws'],
  ),
  dbStats: bool(true, 'wait for PostgreSQL statistics to settle and count row writes (adds ~11 s)'),
  spread: bool(
    false,
    "stagger the tasks' first steps evenly over one interval (a smooth offered rate, not a burst of T events per interval)",
  ),
  floor: bool(
    false,
    "after the run: a bare net writer (bench/lib/write-floor.ts) in the run's shape (sockets, rate, a stamp per task's group, as many readers as generators) for as long as the steps take: the floors under CPU per delivery and latency",
  ),
  nodes: int(1, '2: the jobs run on node A, every subscriber is on node B (API-only), over --bus'),
  bus: str<'postgres' | 'nats' | 'redis' | 'all'>('all', 'with --nodes 2: the bus between the nodes', [
    'postgres',
    'nats',
    'redis',
    'all',
  ]),
} satisfies FlagSpec;

export const fanout = defineScenario({
  name: 'fanout',
  summary: 'T tasks x S subscribers, K steps at I ms; delivered events/s, latency, seq check',
  flags: FLAGS,
  goals: (f) => {
    if (f.nodes > 1) return nodesGoals(f);
    const offered = offeredPerS(f);
    return [
      {
        name: 'delivered events/s >= 120,000',
        target: 'taskwire' as const,
        figure: 'delivered_per_s',
        op: '>=' as const,
        value: 120_000,
      },
      ...(offered <= 61_000
        ? [
            {
              name: `p99 <= 50 ms at ${Math.round(offered)} events/s offered`,
              target: 'taskwire' as const,
              figure: 'latency_p99_ms',
              op: '<=' as const,
              value: 50,
            },
          ]
        : []),
      { name: 'every seq once and in order', target: 'taskwire', figure: 'seq_errors', op: '==', value: 0 },
      ...(f.channelsPerSocket === 1 ? issue14Goals(offered) : []),
      {
        name: '>= 2x the peer on delivered events/s',
        target: 'ratio',
        figure: 'delivered_per_s',
        op: '>=',
        value: 2,
      },
    ];
  },
  ratioNames: ['delivered_per_s'],
  async measure(targetName, f, ctx) {
    if (f.channelsPerSocket < 1 || f.channelsPerSocket > f.tasks)
      throw new Error(`--channels-per-socket must be in 1..--tasks (${f.tasks})`);
    if (f.nodes > 1) {
      if (targetName !== 'taskwire') throw new Error('--nodes measures taskwire only');
      return measureNodes(f, ctx);
    }
    const measured = await withTarget(targetName, ctx, shapeEnv(f), (target) =>
      runShape(f, ctx, targetName, target, () => cpuWindow(target)),
    );
    // After the server has stopped, so the floor has the machine to itself as the server had.
    if (f.floor) {
      await addFloor(measured, f, ctx, targetName).catch((err: unknown) => {
        measured.notes.push(`floor: not measured (${err instanceof Error ? err.message : err})`);
      });
    }
    return measured;
  },
  table: (figures) => nodesTable(figures),
});

type FanoutFlags = FlagValues<typeof FLAGS>;

/** Issue 14's goals for one channel per socket: CPU per delivery, and the tail at half load. */
function issue14Goals(offered: number): Goal[] {
  return [
    {
      name: 'server CPU <= 6 us per delivery',
      target: 'taskwire',
      figure: 'server_us_per_delivery',
      op: '<=',
      value: 6,
    },
    ...(offered <= 50_000
      ? [
          {
            name: 'p99 <= 5 ms at half load',
            target: 'taskwire' as const,
            figure: 'latency_p99_ms',
            op: '<=' as const,
            value: 5,
          },
        ]
      : []),
  ];
}

/** Events a second the run offers: every subscription gets one per step. */
function offeredPerS(f: FanoutFlags): number {
  return (f.tasks * f.subs * 1000) / Math.max(1, f.interval);
}

/** Sockets a run opens: subscriptions packed --channels-per-socket to a socket. */
function socketCount(f: FanoutFlags): number {
  return Math.ceil((f.tasks * f.subs) / f.channelsPerSocket);
}

/** Generator processes a run uses: two unless --gen-procs says otherwise, more when open files require. */
function fanoutGenerators(f: FanoutFlags, ctx: Ctx): number {
  return Math.max(generatorCount(ctx, FANOUT_GENERATORS), Math.ceil(socketCount(f) / socketsPerGenerator()));
}

/**
 * --floor: what a bare `net` writer costs per write on this machine, in the run's shape (its
 * sockets and rate, one write per socket per step, each task's subscribers stamped in turn, read by
 * as many processes as the generators, for as long as the run's steps). With one channel per
 * socket every delivery is its own write, so no server goes below its CPU here; and its latency is
 * what a server with nothing to do but write would show to these readers on these cores.
 */
async function addFloor(measured: Measured, f: FanoutFlags, ctx: Ctx, targetName: TargetName): Promise<void> {
  const floor = await measureWriteFloor({
    sockets: socketCount(f),
    rate: offeredPerS(f),
    seconds: Math.max(0.2, (f.steps * f.interval) / 1000),
    bytes: 140,
    readers: fanoutGenerators(f, ctx),
    // Socket i watches task i mod T: the floor's group i mod T is that task's subscribers.
    groups: f.channelsPerSocket === 1 ? f.tasks : 1,
  });
  const figures = measured.figures;
  figures.floor_us_per_write = floor.writer_us_per_write;
  figures.floor_user_us_per_write = floor.writer_user_us_per_write;
  figures.floor_sys_us_per_write = floor.writer_sys_us_per_write;
  figures.floor_softirq_us_per_write = floor.softirq_us_per_write;
  figures.floor_latency_p50_ms = floor.latency_p50_ms;
  figures.floor_latency_p99_ms = floor.latency_p99_ms;
  figures.floor_latency_max_ms = floor.latency_max_ms;
  const server = Number(figures.server_us_per_delivery);
  measured.notes.push(
    `${targetName}: ${server.toFixed(1)} CPU-us per delivery against the floor's ${floor.writer_us_per_write} per write ` +
      `(a bare net writer, user ${floor.writer_user_us_per_write} + sys ${floor.writer_sys_us_per_write}: ${(server - floor.writer_us_per_write).toFixed(1)} above it)`,
  );
  measured.notes.push(
    `${targetName}: latency p50 / p99 ${figures.latency_p50_ms} / ${figures.latency_p99_ms} ms against the floor's ` +
      `${floor.latency_p50_ms} / ${floor.latency_p99_ms} ms (the bare writer's stamp to its readers, same shape, same machine)`,
  );
  if (f.channelsPerSocket === 1 && floor.writer_us_per_write > 6)
    measured.notes.push(
      `floor: one write per delivery costs ${floor.writer_us_per_write} CPU-us on this machine: <= 6 us per delivery is out of reach here`,
    );
}

function shapeEnv(f: FanoutFlags): Record<string, string> {
  const env: Record<string, string> = {
    TASKWIRE_MAX_CHANNELS: String(Math.max(100, f.channelsPerSocket)),
  };
  if (f.tasks > 100) {
    env.TASKWIRE_CONCURRENCY = String(f.tasks);
    env.PEER_CONCURRENCY = String(f.tasks);
  }
  return env;
}

/**
 * One fan-out run: the tasks are created through `target`, whose sockets every subscriber joins
 * (with --nodes 2 the jobs run on another node). `window()` starts the CPU window.
 */
async function runShape(
  f: FanoutFlags,
  ctx: Ctx,
  targetName: TargetName,
  target: RunningTarget,
  startWindow: () => { stop(genCpuMs: number): Figures },
  /** The node that runs the jobs, when it is not `target` (its /metrics counts snapshots). */
  runner: RunningTarget = target,
): Promise<Measured> {
  const subscriptions = f.tasks * f.subs;
  const sockets = socketCount(f);
  const gens = fanoutGenerators(f, ctx);
  return withGenerators(gens, ctx, async (children) => {
    const token = await target.token('bench-fanout');
    const gate =
      f.gate > 0
        ? f.gate
        : Math.round(2000 + sockets * (targetName !== 'taskwire' ? 4 : 2) + subscriptions * 0.3);
    const before = f.dbStats ? await target.dbWrites() : undefined;
    const stats0 = await runner.stats();
    const bus0 = runner === target ? await busCounters(target) : undefined;
    const startAt = Date.now() + gate;
    const ids = await createTasks(
      target,
      token,
      Array.from({ length: f.tasks }, (_, i) => ({
        type: 'bench_demo',
        steps: f.steps,
        interval_ms: f.interval,
        // --spread: task i starts i/T of an interval later, so the steps of the T tasks don't
        // all fall in the same millisecond (each task still starts after every join).
        start_at: f.spread ? startAt + Math.floor((i * f.interval) / f.tasks) : startAt,
      })),
    );
    // Subscription i watches task i mod T; consecutive ones share a socket, so a socket's
    // tasks are distinct as long as channelsPerSocket <= T.
    const plans: SocketPlan[] = [];
    for (let i = 0; i < subscriptions; i += f.channelsPerSocket) {
      const tasks: string[] = [];
      for (let k = i; k < Math.min(subscriptions, i + f.channelsPerSocket); k++) tasks.push(ids[k % f.tasks]);
      plans.push({ token: 0, tasks });
    }
    ctx.log(
      `${targetName}: ${f.tasks} tasks x ${f.subs} subscribers on ${plans.length} sockets (${f.channelsPerSocket}/socket), ` +
        `${f.steps} steps at ${f.interval} ms, step 1 in ${gate} ms`,
    );
    const connects = await connectAll(children, target, token, plans, {
      connectConcurrency: f.connectConcurrency,
      lean: f.genClient === 'lean',
      sourceIps: plans.length > 20_000 ? 250 : 1,
      timeoutMs: 30 * 60_000,
    });
    const joinedAt = Date.now();
    const joinSlackMs = startAt - joinedAt;
    ctx.log(
      `${targetName}: joined ${sum(connects.map((c) => c.joins - c.joinFailures))} subscriptions, ` +
        `${joinSlackMs >= 0 ? `${joinSlackMs} ms before step 1` : `${-joinSlackMs} ms AFTER step 1 (raise --gate)`}`,
    );
    if (joinSlackMs > 0) await sleep(joinSlackMs);
    await target.probe(false);
    const cpu = startWindow();
    const timeoutMs = f.steps * f.interval * 5 + 60_000;
    const collected = await profiled(target, ctx, 'fanout', () =>
      Promise.all(
        children.map((g) => g.request<CollectResult>({ cmd: 'collect', timeoutMs }, timeoutMs + 60_000)),
      ),
    );
    const window = cpu.stop(sum(collected.map((c) => c.cpuMs)));
    const windowMs = Number(window.window_s) * 1000;
    const probe = await target.probe(false);
    const stats1 = await runner.stats();
    const bus1 = bus0 ? await busCounters(target) : undefined;
    await Promise.all(children.map((g) => g.request({ cmd: 'close' }, 120_000)));
    const after = await dbWritesAfterRun(target, before);

    const {
      events,
      spanMs,
      latency: lat,
      join,
      subs,
      complete,
      byName,
      joinFailures,
      connectFailures,
    } = receiveTotals(collected, connects);
    const bySeq = latencyBySeq(collected);
    const missing = sum(collected.map((c) => c.missing));
    const dups = sum(collected.map((c) => c.dups));
    const closes = sum(collected.map((c) => c.stats.unexpectedCloses));
    const seqErrors = missing + dups + (subs - complete) + joinFailures + connectFailures;
    const progressUpdates = f.tasks * f.steps;
    const notes: string[] = [];
    if (joinSlackMs < 0)
      notes.push(
        `${targetName}: joins finished ${-joinSlackMs} ms after step 1; raise --gate for a clean shape`,
      );
    if (bySeq.length > 0)
      notes.push(
        `${targetName}: worst steps (seq: max / mean ms): ${bySeq
          .slice(0, 8)
          .map((r) => `${r.seq}: ${r.max} / ${r.mean.toFixed(1)}`)
          .join(', ')}`,
      );
    const errors = mergeCounts(connects.map((c) => c.errors));
    if (Object.keys(errors).length > 0) notes.push(`${targetName}: errors: ${topErrors(errors)}`);
    if (collected.some((c) => c.timedOut))
      notes.push(`${targetName}: some subscribers never saw the end (timeout)`);
    const writes = before && after ? after.taskwire - before.taskwire : undefined;
    // CPU per delivered event: the server's user (JavaScript) and system (the kernel: writev
    // and, on loopback, most of the TCP path to the reader) time over the window, the
    // machine's softirq time, and the generators'. With --nodes 2 the server is both nodes.
    const perDelivery = (cpuMs: number) => (events > 0 ? (cpuMs * 1000) / events : Number.NaN);
    const serverMs = (Number(window.server_cpu_pct) / 100) * windowMs;
    const serverSysMs = (Number(window.server_sys_pct) / 100) * windowMs;
    const queueWrites = before && after ? after.queue - before.queue : undefined;
    return {
      notes,
      figures: {
        sockets: sum(connects.map((c) => c.opened)),
        subscriptions: subs,
        offered_per_s: (f.tasks * f.subs * 1000) / f.interval,
        delivered_per_s: spanMs > 0 ? (events / spanMs) * 1000 : Number.NaN,
        events,
        progress_events: byName.progress ?? 0,
        latency_p50_ms: lat.p50,
        latency_p95_ms: lat.p95,
        latency_p99_ms: lat.p99,
        latency_max_ms: lat.max,
        // The worst step's mean latency: p99 is 1 % of the events, about one step of a run
        // this short, so a single slow step (a GC, a burst) sets it.
        latency_worst_step_mean_ms: bySeq[0]?.mean ?? Number.NaN,
        subs_complete: complete,
        missing_seqs: missing,
        duplicate_seqs: dups,
        seq_errors: seqErrors,
        join_p50_ms: join.p50,
        join_p99_ms: join.p99,
        join_failures: joinFailures + connectFailures,
        unexpected_closes: closes,
        ...window,
        ...(bus0 && bus1 ? busFigures(bus0, bus1) : {}),
        server_us_per_delivery: perDelivery(serverMs),
        server_user_us_per_delivery: perDelivery(serverMs - serverSysMs),
        server_sys_us_per_delivery: perDelivery(serverSysMs),
        irq_us_per_delivery: perDelivery((Number(window.irq_cpu_pct) / 100) * windowMs),
        generators: gens,
        generator_us_per_delivery: perDelivery(sum(collected.map((c) => c.cpuMs))),
        generator_user_us_per_delivery: perDelivery(sum(collected.map((c) => c.cpuUserMs))),
        generator_sys_us_per_delivery: perDelivery(sum(collected.map((c) => c.cpuSysMs))),
        generator_loop_delay_p50_ms: Math.max(...collected.map((c) => c.loopDelayP50Ms)),
        generator_loop_delay_p99_ms: Math.max(...collected.map((c) => c.loopDelayP99Ms)),
        generator_loop_delay_max_ms: Math.max(...collected.map((c) => c.loopDelayMaxMs)),
        // The probe's GC pauses and loop delay are `target`'s (with --nodes 2: node B, the sockets).
        ...(probe.loopDelay
          ? {
              server_loop_delay_p99_ms: probe.loopDelay.p99,
              server_loop_delay_max_ms: probe.loopDelay.max,
            }
          : {}),
        ...(probe.gc
          ? {
              server_gc_count: probe.gc.count,
              server_gc_ms: probe.gc.ms,
              server_gc_max_ms: probe.gc.maxMs,
              server_gc_major: probe.gc.major,
            }
          : {}),
        server_elu: probe.elu,
        server_rss_mb: probe.rss / MB,
        ...(stats1.conflated !== undefined
          ? { conflated: (stats1.conflated ?? 0) - (stats0.conflated ?? 0) }
          : {}),
        ...(stats1.snapshotRows !== undefined
          ? { snapshot_rows: (stats1.snapshotRows ?? 0) - (stats0.snapshotRows ?? 0) }
          : {}),
        ...(writes !== undefined
          ? {
              progress_updates: progressUpdates,
              taskwire_row_writes: writes,
              taskwire_writes_per_progress: writes / progressUpdates,
              queue_row_writes: queueWrites ?? null,
            }
          : {}),
      },
    };
  });
}

// ---- --nodes 2: the jobs on node A, every subscriber on node B, over each bus ----

type BusKind = 'postgres' | 'nats' | 'redis';
const BUS_KINDS: BusKind[] = ['postgres', 'nats', 'redis'];

function busesOf(f: FanoutFlags): BusKind[] {
  return f.bus === 'all' ? BUS_KINDS : [f.bus];
}

function nodesGoals(f: FanoutFlags): Goal[] {
  const busRate = Math.round((f.tasks * 1000) / Math.max(1, f.interval));
  const goals: Goal[] = [];
  for (const bus of busesOf(f)) {
    if (bus !== 'postgres')
      goals.push({
        name: `${bus}: p99 <= 20 ms at ${busRate} events/s through the engine`,
        target: 'taskwire',
        figure: `${bus}_latency_p99_ms`,
        op: '<=',
        value: 20,
      });
    goals.push({
      name: `${bus}: every seq once and in order`,
      target: 'taskwire',
      figure: `${bus}_seq_errors`,
      op: '==',
      value: 0,
    });
  }
  return goals;
}

const NODE_FIGURES: Array<[string, string, (v: Figures) => string]> = [
  ['bus', '', () => ''],
  ['delivered/s', 'delivered_per_s', (v) => fmt(v.delivered_per_s, 0)],
  [
    'p50 / p99 / max ms',
    'latency_p99_ms',
    (v) => `${fmt(v.latency_p50_ms, 1)} / ${fmt(v.latency_p99_ms, 1)} / ${fmt(v.latency_max_ms, 1)}`,
  ],
  ['seq errors', 'seq_errors', (v) => fmt(v.seq_errors, 0)],
  [
    'server user / sys µs per delivery',
    'server_us_per_delivery',
    (v) => `${fmt(v.server_user_us_per_delivery, 1)} / ${fmt(v.server_sys_us_per_delivery, 1)}`,
  ],
  ['generator µs per delivery', 'generator_us_per_delivery', (v) => fmt(v.generator_us_per_delivery, 1)],
  [
    'bus lag p50 / p99 ≤ ms',
    'bus_lag_p99_ms_at_most',
    (v) => `${fmt(v.bus_lag_p50_ms_at_most, 1)} / ${fmt(v.bus_lag_p99_ms_at_most, 1)}`,
  ],
  ['node A CPU %', 'node_a_cpu_pct', (v) => fmt(v.node_a_cpu_pct, 0)],
  ['node B CPU %', 'node_b_cpu_pct', (v) => fmt(v.node_b_cpu_pct, 0)],
  ['engine CPU %', 'engine_cpu_pct', (v) => fmt(v.engine_cpu_pct, 0)],
  ['PostgreSQL CPU %', 'postgres_cpu_pct', (v) => fmt(v.postgres_cpu_pct, 0)],
  ['generator CPU %', 'generator_cpu_pct', (v) => fmt(v.generator_cpu_pct, 0)],
  ['others %', 'others_cpu_pct', (v) => fmt(v.others_cpu_pct, 0)],
];

/** One row per bus measured (--nodes 2), from the `<bus>_` figures. */
function nodesTable(figures: Figures): string[][] {
  const rows: string[][] = [NODE_FIGURES.map(([h]) => h)];
  for (const bus of BUS_KINDS) {
    if (!(`${bus}_delivered_per_s` in figures)) continue;
    const mine: Figures = {};
    for (const [k, v] of Object.entries(figures))
      if (k.startsWith(`${bus}_`)) mine[k.slice(bus.length + 1)] = v;
    rows.push(NODE_FIGURES.map(([, , cell], i) => (i === 0 ? bus : cell(mine))));
  }
  return rows;
}

function fmt(v: unknown, digits: number): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '-';
  return v.toLocaleString('en-US', { maximumFractionDigits: digits });
}

/** Waits (up to a minute) until the machine is less busy than --quiet-below (0: no wait). */
async function quiet(belowPct: number, log: (line: string) => void): Promise<void> {
  if (belowPct <= 0) return;
  const deadline = Date.now() + 60_000;
  let busy = await machineBusyPct(1000);
  if (busy >= belowPct) log(`the machine is ${busy.toFixed(0)}% busy with other work; waiting`);
  while (busy >= belowPct && Date.now() < deadline) busy = await machineBusyPct(2000);
}

async function measureNodes(f: FanoutFlags, ctx: Ctx): Promise<Measured> {
  const figures: Figures = {};
  const notes: string[] = [];
  let worstOthers = 0;
  for (const bus of busesOf(f)) {
    // Between buses too, as the runner does before a target (--quiet-below, a common flag).
    await quiet((f as { quietBelow?: number }).quietBelow ?? 25, ctx.log);
    try {
      const m = await measureBus(bus, f, ctx);
      for (const [k, v] of Object.entries(m.figures)) figures[`${bus}_${k}`] = v;
      notes.push(...m.notes.map((n) => `${bus}: ${n}`));
      worstOthers = Math.max(worstOthers, Number(m.figures.others_cpu_pct ?? 0));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      notes.push(`${bus}: run failed: ${message.split('\n')[0]}`);
      ctx.log(`${bus} run failed: ${err instanceof Error ? err.stack : message}`);
    }
  }
  figures.others_cpu_pct = worstOthers;
  figures.bus_offered_per_s = (f.tasks * 1000) / f.interval;
  return { figures, notes };
}

/** Two taskwire processes on one fresh database over `bus`: A runs the jobs, B holds the sockets. */
async function measureBus(bus: BusKind, f: FanoutFlags, ctx: Ctx): Promise<Measured> {
  const db = await createDatabase();
  let engine: EngineProcess | undefined;
  const nodes: RunningTarget[] = [];
  try {
    const busEnv: Record<string, string> = { TASKWIRE_BUS: bus };
    if (bus === 'nats') {
      engine = await startNatsServer();
      busEnv.NATS_URL = engine.url;
    } else if (bus === 'redis') {
      engine = await startRedisServer({ tcp: true });
      busEnv.REDIS_URL = engine.url;
    }
    const start = (label: string, env: Record<string, string>) =>
      startTaskwire({
        env: { ...shapeEnv(f), ...busEnv, ...ctx.serverEnv, ...env },
        cpuProf: ctx.cpuProf,
        log: ctx.log,
        runId: ctx.runId,
        root: ctx.taskwireRoot,
        database: db,
        label: `${bus}-${label}`,
      });
    // A first, so that B's hello finds it; B runs no jobs (an API-and-sockets node).
    const a = await start('a', {});
    nodes.push(a);
    const b = await start('b', { TASKWIRE_CONCURRENCY: '0' });
    nodes.push(b);
    for (const [name, node] of [
      ['A', a],
      ['B', b],
    ] as const)
      await waitFor(
        `node ${name} to hear the other on the ${bus} bus`,
        async () => {
          const [m] = await node.metricsPerProcess(['taskwire_bus_peers'], 1);
          return (m?.taskwire_bus_peers ?? 0) >= 1 ? true : undefined;
        },
        30_000,
        200,
      );
    // The engine's CPU: the private server's process; for PostgreSQL, the bus connections'
    // backends (also inside postgres_cpu_pct).
    let enginePids: number[] = [];
    if (engine) enginePids = [engine.pid()];
    else {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ pid: number }>(
          "select pid from pg_stat_activity where datname = $1 and application_name = 'taskwire-bus'",
          [db.name],
        );
        enginePids = rows.map((r) => r.pid);
      } finally {
        await client.end();
      }
    }
    const engineMs = () => enginePids.reduce((sum, pid) => sum + cpuMs(pid), 0);
    const names = [
      'taskwire_bus_events_published_total',
      'taskwire_bus_events_received_total',
      ...LAG_BUCKETS.map(lagBucket),
    ];
    const [a0] = await a.metricsPerProcess(names, 1);
    const [b0] = await b.metricsPerProcess(names, 1);
    ctx.log(`${bus}: node A pid ${a.child.pid} runs the jobs, node B pid ${b.child.pid} holds the sockets`);
    const measured = await runShape(f, ctx, 'taskwire', b, () => nodesWindow(a, b, engineMs, !engine), a);
    const [a1] = await a.metricsPerProcess(names, 1);
    const [b1] = await b.metricsPerProcess(names, 1);
    measured.figures.bus_events_published_by_a =
      (a1?.taskwire_bus_events_published_total ?? 0) - (a0?.taskwire_bus_events_published_total ?? 0);
    measured.figures.bus_events_received_by_b =
      (b1?.taskwire_bus_events_received_total ?? 0) - (b0?.taskwire_bus_events_received_total ?? 0);
    // B's histogram of bus lag (an event leaving A to its arrival at B): the bus's share of the latency.
    const lagCounts = LAG_BUCKETS.map((le) => (b1?.[lagBucket(le)] ?? 0) - (b0?.[lagBucket(le)] ?? 0));
    measured.figures.bus_lag_p50_ms_at_most = lagQuantile(lagCounts, 0.5);
    measured.figures.bus_lag_p99_ms_at_most = lagQuantile(lagCounts, 0.99);
    measured.figures.engine = engine ? `private ${bus} pid ${engine.pid()}` : 'PostgreSQL bus backends';
    return measured;
  } finally {
    for (const node of nodes.reverse())
      await node.stop().catch((err: unknown) => ctx.log(`stopping a node failed: ${err}`));
    await engine?.dispose().catch(() => {});
    await db.drop().catch((err: unknown) => ctx.log(`could not drop ${db.name}: ${err}`));
  }
}

/** The buckets of `taskwire_bus_lag_seconds` (src/http/metrics.ts), in seconds. */
const LAG_BUCKETS = [
  '0.0005',
  '0.001',
  '0.002',
  '0.005',
  '0.01',
  '0.025',
  '0.05',
  '0.1',
  '0.25',
  '1',
  '+Inf',
];
const lagBucket = (le: string) => `taskwire_bus_lag_seconds_bucket{le="${le}"}`;

/** The upper bound (ms) of the bucket holding quantile q of a cumulative histogram's counts. */
function lagQuantile(cumulative: number[], q: number): number | null {
  const total = cumulative.at(-1) ?? 0;
  if (total <= 0) return null;
  const i = cumulative.findIndex((c) => c >= q * total);
  const le = LAG_BUCKETS[i];
  return le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le) * 1000;
}

/** CPU of both nodes, PostgreSQL, the engine, the generators, and what else ran, over a window. */
function nodesWindow(a: RunningTarget, b: RunningTarget, engineMs: () => number, engineInPostgres: boolean) {
  const meterA = new CpuMeter(a.child.pid, ['postgres']);
  const meterB = new CpuMeter(b.child.pid);
  const e0 = engineMs();
  meterA.start();
  meterB.start();
  return {
    stop(genCpuMs: number): Figures {
      const ra = meterA.stop();
      const rb = meterB.stop();
      const enginePct = ((engineMs() - e0) / ra.wallMs) * 100;
      const pgPct = ra.helpers.postgres ?? 0;
      const genPct = (genCpuMs / ra.wallMs) * 100;
      return {
        node_a_cpu_pct: ra.cpuPct,
        node_a_sys_pct: ra.sysPct,
        node_b_cpu_pct: rb.cpuPct,
        node_b_sys_pct: rb.sysPct,
        server_cpu_pct: ra.cpuPct + rb.cpuPct,
        server_sys_pct: ra.sysPct + rb.sysPct,
        postgres_cpu_pct: pgPct,
        engine_cpu_pct: enginePct,
        generator_cpu_pct: genPct,
        irq_cpu_pct: ra.irqPct,
        others_cpu_pct: Math.max(
          0,
          ra.machinePct -
            ra.irqPct -
            ra.cpuPct -
            rb.cpuPct -
            pgPct -
            (engineInPostgres ? 0 : enginePct) -
            genPct,
        ),
        window_s: ra.wallMs / 1000,
      };
    },
  };
}

/** Steps (seqs) by their mean latency over every subscriber, worst first. */
function latencyBySeq(collected: CollectResult[]): Array<{ seq: number; max: number; mean: number }> {
  const rows: Array<{ seq: number; max: number; mean: number }> = [];
  const slots = collected[0]?.seqMax.length ?? 0;
  for (let seq = 0; seq < slots; seq++) {
    let max = 0;
    let total = 0;
    let n = 0;
    for (const c of collected) {
      max = Math.max(max, c.seqMax[seq]);
      total += c.seqSum[seq];
      n += c.seqCount[seq];
    }
    if (n > 0) rows.push({ seq, max, mean: total / n });
  }
  return rows.sort((a, b) => b.mean - a.mean);
}
