// What every scenario shares: the run context, starting the target and the generator processes
// (with cleanup whatever happens), splitting work between generator processes, CPU windows,
// and window-scoped CPU profiles.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { CollectResult, ConnectResult, SocketPlan } from '../generator/main.ts';
import type { FlagSpec, FlagValues } from '../lib/args.ts';
import { type Child, CpuMeter, nofileHardLimit, sleep, spawnNode } from '../lib/procs.ts';
import type { Figures, Goal } from '../lib/report.ts';
import { concat, summarize } from '../lib/stats.ts';
import {
  BENCH_DIR,
  RESULTS_DIR,
  ROOT,
  type RunningTarget,
  startTarget,
  type TargetName,
} from '../lib/targets.ts';
import { formatSummary, type ProfileSummary, summarizeProfile } from '../tools/profile.ts';

export interface Ctx {
  runId: string;
  /** Progress lines (stderr). */
  log(line: string): void;
  /**
   * Generator processes asked for with --gen-procs (at least; more when the sockets need more open
   * files); 0: the scenario's own number (`generatorCount`).
   */
  genProcs: number;
  /** Niceness of the generator processes (0: same priority as the server). */
  genNice: number;
  /** Extra server environment from --server-env KEY=VALUE (and a --variant's own). */
  serverEnv: Record<string, string>;
  /** The taskwire checkout under test, when a --variant names one. */
  taskwireRoot?: string;
  /** Window-scoped CPU profile of the server (--profile). */
  profile: boolean;
  /** Whole-process `node --cpu-prof` of the server (--cpu-prof). */
  cpuProf: boolean;
  profiles: Array<{ target: TargetName; label: string; summary: ProfileSummary }>;
}

export interface Measured {
  figures: Figures;
  notes: string[];
}

export interface Scenario<S extends FlagSpec = FlagSpec> {
  name: string;
  summary: string;
  flags: S;
  /** Scenario-specific server environment, per target. */
  goals(flags: FlagValues<S>): Goal[];
  /** Figures compared as taskwire/peer; the last is the headline figure (taskwire/<target>). */
  ratioNames: string[];
  /** What `--target all` measures (default taskwire and peer). */
  allTargets?: TargetName[];
  measure(target: TargetName, flags: FlagValues<S>, ctx: Ctx): Promise<Measured>;
  /** A compact table of the figures (rows of cells, the first a header), printed after the report. */
  table?(figures: Figures): string[][];
}

export function defineScenario<S extends FlagSpec>(s: Scenario<S>): Scenario<S> {
  return s;
}

/** Starts the target with the scenario's env (under --server-env), runs fn, always stops it. */
export async function withTarget<T>(
  name: TargetName,
  ctx: Ctx,
  env: Record<string, string>,
  fn: (t: RunningTarget) => Promise<T>,
): Promise<T> {
  const target = await startTarget(name, {
    env: { ...env, ...ctx.serverEnv },
    cpuProf: ctx.cpuProf,
    log: ctx.log,
    runId: ctx.runId,
    root: name === 'taskwire' ? ctx.taskwireRoot : undefined,
  });
  try {
    return await fn(target);
  } finally {
    const whole = await target.stop().catch((err: unknown) => {
      ctx.log(`stopping ${name} failed: ${err}`);
      return undefined;
    });
    if (whole) addProfile(ctx, name, 'process', whole);
  }
}

function addProfile(ctx: Ctx, target: TargetName, label: string, file: string): void {
  try {
    const summary = summarizeProfile(file, 25);
    ctx.profiles.push({ target, label, summary });
    ctx.log(`${target} ${label}: ${formatSummary(summary)}`);
  } catch (err) {
    ctx.log(`could not read profile ${file}: ${err}`);
  }
}

/** Runs fn inside a window-scoped CPU profile of the server when --profile is on. */
export async function profiled<T>(
  target: RunningTarget,
  ctx: Ctx,
  label: string,
  fn: () => Promise<T>,
): Promise<T> {
  if (!ctx.profile) return fn();
  await target.profileStart();
  try {
    return await fn();
  } finally {
    const file = await target.profileStop(label);
    addProfile(ctx, target.name, label, file);
  }
}

const GENERATOR = path.join(BENCH_DIR, 'generator/main.ts');

/** The generator processes a run uses: --gen-procs, or the scenario's own number when it is 0. */
export function generatorCount(ctx: Ctx, scenarioDefault = 1): number {
  return ctx.genProcs > 0 ? ctx.genProcs : scenarioDefault;
}

/** How many sockets one generator process may hold under the hard open-files limit. */
export function socketsPerGenerator(): number {
  return Math.max(100, nofileHardLimit() - 300);
}

export async function withGenerators<T>(
  count: number,
  ctx: Ctx,
  fn: (gens: Child[]) => Promise<T>,
): Promise<T> {
  mkdirSync(path.join(RESULTS_DIR, 'logs'), { recursive: true });
  // BENCH_GEN_CPU_PROF=<dir>: each generator runs under node --cpu-prof (written when it exits).
  // BENCH_GEN_NODE_ARGS: more node flags for the generators (space-separated), as BENCH_SERVER_NODE_ARGS.
  const genProf = process.env.BENCH_GEN_CPU_PROF;
  const genArgs = (process.env.BENCH_GEN_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const gens = Array.from({ length: count }, (_, i) =>
    spawnNode(GENERATOR, [], {
      env: { ...process.env, NODE_OPTIONS: '' },
      nodeArgs: [...genArgs, ...(genProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(genProf)] : [])],
      nofile: nofileHardLimit(),
      logFile: path.join(RESULTS_DIR, 'logs', `${ctx.runId}-generator-${i}.log`),
      cwd: ROOT,
      nice: ctx.genNice,
    }),
  );
  try {
    await Promise.all(gens.map((g) => g.request({ cmd: 'ping' }, 30_000)));
    return await fn(gens);
  } finally {
    await Promise.all(gens.map((g) => g.stop(5000)));
  }
}

/** Splits items into `parts` contiguous chunks of nearly equal size. */
export function split<T>(items: T[], parts: number): T[][] {
  const out: T[][] = [];
  let at = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(items.length / parts) + (i < items.length % parts ? 1 : 0);
    out.push(items.slice(at, at + size));
    at += size;
  }
  return out;
}

/**
 * Opens the planned sockets, split over the generators, each joining its tasks (latency sampled,
 * Phoenix heartbeats at 30 s); resolves with every generator's connect result.
 */
export function connectAll(
  gens: Child[],
  target: RunningTarget,
  token: string,
  plans: SocketPlan[],
  opts: { connectConcurrency: number; lean: boolean; sourceIps: number; timeoutMs: number },
): Promise<ConnectResult[]> {
  const parts = split(plans, gens.length);
  let offset = 0;
  return Promise.all(
    gens.map((g, i) => {
      const job = {
        cmd: 'connect',
        mode: target.mode,
        url: target.socketUrl,
        tokens: [token],
        sockets: parts[i],
        concurrency: Math.max(1, Math.ceil(opts.connectConcurrency / gens.length)),
        sourceIps: opts.sourceIps,
        indexOffset: offset,
        heartbeatMs: 30_000,
        sampleLatency: true,
        lean: opts.lean,
      };
      offset += parts[i].length;
      return g.request<ConnectResult>(job, opts.timeoutMs);
    }),
  );
}

/** PostgreSQL backends flush their statistics at most every 10 s when idle. */
const STATS_FLUSH_MS = 11_000;

/**
 * The database's writes after a run, read once the backends have flushed their statistics; undefined
 * when the run did not count them (no reading before it).
 */
export async function dbWritesAfterRun<W>(
  source: { dbWrites(): Promise<W> },
  before: unknown,
): Promise<W | undefined> {
  if (before === undefined) return undefined;
  await sleep(STATS_FLUSH_MS);
  return source.dbWrites();
}

/** From the first event any generator received to the last, in ms (the delivery rate's span). */
function receiveSpanMs(collected: CollectResult[]): number {
  const firstRecv = Math.min(...collected.filter((c) => c.events > 0).map((c) => c.firstRecv));
  const lastRecv = Math.max(...collected.map((c) => c.lastRecv));
  return lastRecv - firstRecv;
}

/** What the subscribing scenarios sum over their generators: events received, joins, subscriptions. */
export function receiveTotals(collected: CollectResult[], connects: ConnectResult[]) {
  return {
    events: sum(collected.map((c) => c.events)),
    spanMs: receiveSpanMs(collected),
    latency: summarize(concat(collected.map((c) => c.latency))),
    join: summarize(concat(connects.map((c) => c.joinMs))),
    subs: sum(collected.map((c) => c.subs)),
    complete: sum(collected.map((c) => c.subsComplete)),
    byName: mergeCounts(collected.map((c) => c.byName)),
    joinFailures: sum(connects.map((c) => c.joinFailures)),
    connectFailures: sum(connects.map((c) => c.connectFailures)),
  };
}

/** CPU of the server and its store over a window, with the generators' own CPU. */
export function cpuWindow(target: RunningTarget) {
  const meter = new CpuMeter(target.child.pid, [target.storeComm]);
  meter.start();
  return {
    stop(genCpuMs: number) {
      const r = meter.stop();
      return {
        server_cpu_pct: r.cpuPct,
        server_sys_pct: r.sysPct,
        [`${target.storeComm === 'postgres' ? 'postgres' : 'redis'}_cpu_pct`]: r.helpers[target.storeComm],
        generator_cpu_pct: (genCpuMs / r.wallMs) * 100,
        irq_cpu_pct: r.irqPct,
        // `--processes N`: the primary, then each worker.
        ...(r.perProcessPct.length > 1
          ? { server_cpu_pct_by_process: r.perProcessPct.map((p) => p.toFixed(0)).join(' / ') }
          : {}),
        // What the rest of the machine used meanwhile (other processes, kernel threads): a
        // large figure means the run was disturbed.
        others_cpu_pct: Math.max(
          0,
          r.machinePct -
            r.irqPct -
            r.cpuPct -
            (r.helpers[target.storeComm] ?? 0) -
            (genCpuMs / r.wallMs) * 100,
        ),
        window_s: r.wallMs / 1000,
      } as Figures;
    },
  };
}

export function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

export function mergeCounts(maps: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of maps) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export function topErrors(errors: Record<string, number>, n = 3): string {
  return Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${v}x ${k}`)
    .join('; ');
}

export const MB = 1024 * 1024;
export const KB = 1024;

/**
 * The bus counters of ONE of the server's processes (the port is shared, so whichever worker
 * answers; `--processes N` workers cannot be told apart from outside: their start times are
 * whole seconds). With two workers, one's events sent plus received is every event that crossed
 * the bus (what one sends the other receives). Read before the run (a fresh server: 0) and after.
 */
export async function busCounters(target: RunningTarget): Promise<{ published: number; received: number }> {
  const [row] = await target.metricsPerProcess(
    ['taskwire_bus_events_published_total', 'taskwire_bus_events_received_total'],
    1,
  );
  return {
    published: row?.taskwire_bus_events_published_total ?? 0,
    received: row?.taskwire_bus_events_received_total ?? 0,
  };
}

/** The figures of two busCounters() readings. */
export function busFigures(
  before: Awaited<ReturnType<typeof busCounters>>,
  after: Awaited<ReturnType<typeof busCounters>>,
): Figures {
  const published = after.published - before.published;
  const received = after.received - before.received;
  return {
    bus_events_sent_by_one_process: published,
    bus_events_received_by_one_process: received,
    bus_events_if_two_processes: published + received,
  };
}
