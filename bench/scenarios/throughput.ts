// throughput: N tasks of `demo` {steps: 1, interval_ms: 0} submitted over HTTP at concurrency C
// (closed loop) or at a fixed rate (open loop, --rate). Each client submits, joins the task's
// channel (room) on its socket, and counts the task completed when the socket says so (the join
// reply's state or the `completed` event). Figures: accepted/s, completed/s, submit->accepted and
// submit->completed percentiles, and CPU µs per task in the server, its store and the generator.
// `graphile-ceiling` is no server: bare graphile-worker adding and completing no-op jobs (see
// bench/peers/graphile-ceiling), the most the queue under taskwire does on this machine.

import type { ThroughputJob, ThroughputResult } from '../generator/main.ts';
import { bool, type FlagSpec, type FlagValues, int, ms, num, str } from '../lib/args.ts';
import { statementCounter, VACUUM_NOTE, vacuumIfNoAutovacuum } from '../lib/pg.ts';
import type { Child } from '../lib/procs.ts';
import { CpuMeter } from '../lib/procs.ts';
import type { Figures } from '../lib/report.ts';
import { concat, summarize, worstWindow } from '../lib/stats.ts';
import { type DbWrites, startCeiling } from '../lib/targets.ts';
import type { CeilingResult } from '../peers/graphile-ceiling/main.ts';
import {
  busCounters,
  busFigures,
  type Ctx,
  cpuWindow,
  dbWritesAfterRun,
  defineScenario,
  generatorCount,
  type Measured,
  mergeCounts,
  profiled,
  split,
  sum,
  topErrors,
  withGenerators,
  withTarget,
} from './common.ts';

/** The windows of due times that `completed_worst_window_*` compares. */
const WORST_WINDOW_MS = 250;

/** CPU µs per task from a window's CPU percentages (of one core) over `window_s`. */
function cpuPerTask(window: Figures, tasks: number): Figures {
  const us = (pct: unknown) =>
    typeof pct === 'number' && tasks > 0 ? ((pct / 100) * Number(window.window_s) * 1e6) / tasks : null;
  const store = 'postgres_cpu_pct' in window ? 'postgres' : 'redis';
  return {
    server_cpu_us_per_task: us(window.server_cpu_pct),
    [`${store}_cpu_us_per_task`]: us(window[`${store}_cpu_pct`]),
    generator_cpu_us_per_task: us(window.generator_cpu_pct),
  };
}

/** Completed tasks per second of a run's measured phase, over all its generators. */
function completedPerS(results: ThroughputResult[]): number {
  const start = Math.min(...results.map((r) => r.start));
  const lastDone = Math.max(...results.map((r) => r.lastDone));
  const completed = sum(results.map((r) => r.completed));
  return lastDone > start ? (completed / (lastDone - start)) * 1000 : Number.NaN;
}

function writesPerTask(before: DbWrites | undefined, after: DbWrites | undefined, tasks: number): Figures {
  if (!before || !after) return {};
  const n = Math.max(1, tasks);
  return {
    taskwire_row_writes_per_task: (after.taskwire - before.taskwire) / n,
    queue_row_writes_per_task: (after.queue - before.queue) / n,
    commits_per_task: (after.commits - before.commits) / n,
  };
}

const FLAGS = {
  tasks: int(6000, 'tasks measured'),
  warmup: int(500, 'tasks run first and not measured'),
  concurrency: int(64, 'tasks in flight at once (closed loop), or the cap on in-flight tasks with --rate'),
  rate: num(0, 'open loop: submit this many tasks per second (latency counted from when each was due)'),
  peakFraction: num(
    0,
    'open loop at this fraction of the peak the same server just reached: a closed loop of --peak-tasks ' +
      'at --peak-concurrency first, then --rate = fraction × its completed/s (0: off; excludes --rate)',
  ),
  peakTasks: int(12_000, '--peak-fraction: tasks of the closed loop that measures the peak (after --warmup)'),
  peakConcurrency: int(256, '--peak-fraction: tasks in flight in that closed loop'),
  sockets: int(0, 'client sockets used to watch tasks (0: one per concurrency slot, at most 64)'),
  steps: int(1, 'demo steps per task'),
  intervalMs: int(0, 'demo interval_ms'),
  taskTimeout: ms(60_000, 'a task not completed after this counts as a failure'),
  laneRelease: ms(
    3000,
    'closed loop: a slot that waited this long for a task moves on to the next (the task still counts ' +
      'if it ends before --task-timeout), so an end the server never sends does not stall a slot (0: wait)',
  ),
  users: int(1, 'submitting users (one generator process each at most)'),
  genClient: str<'lean' | 'ws'>(
    'lean',
    "taskwire: the generator's Phoenix client, lean (a net socket read in place, see fanout) or ws",
    ['lean', 'ws'],
  ),
  serverConcurrency: int(0, 'jobs run at once by the server (0: the server default, 100)'),
  poolSize: int(0, 'taskwire database pool size (0: the default, 10)'),
  ceilingJobs: int(
    30_000,
    'graphile-ceiling: jobs measured (0: --tasks); at ~20,000/s fewer end before the queue reaches its steady rate',
  ),
  ceilingBatch: int(64, 'graphile-ceiling: jobs per addJobs call'),
  ceilingBacklog: int(1024, 'graphile-ceiling: jobs added but not yet completed, at most'),
  ceilingProducers: int(2, 'graphile-ceiling: addJobs calls in flight at once'),
  dbStats: bool(true, 'wait for PostgreSQL statistics to settle and count row writes per task (adds ~11 s)'),
  vacuum: bool(
    true,
    "when the database's autovacuum is off: VACUUM ANALYZE the run's database between the warm-up " +
      'and the measured phase, as autovacuum would have (a production database has it on)',
  ),
} satisfies FlagSpec;

export const throughput = defineScenario({
  name: 'throughput',
  summary: 'N one-step tasks submitted at concurrency C (or --rate R/s); accepted/s, completed/s, latency',
  flags: FLAGS,

  goals: (f) => [
    {
      name: 'tasks/s submitted->completed >= 2000',
      target: 'taskwire',
      figure: 'completed_per_s',
      op: '>=',
      value: 2000,
    },
    ...(f.peakFraction > 0 && f.peakFraction <= 0.6
      ? [
          {
            name: `p99 submit->completed <= 100 ms at ${f.peakFraction} of the peak`,
            target: 'taskwire' as const,
            figure: 'completed_p99_ms',
            op: '<=' as const,
            value: 100,
          },
        ]
      : []),
    ...(f.rate > 0 && f.rate <= 500
      ? [
          {
            name: `p99 submit->completed <= 100 ms at ${f.rate}/s`,
            target: 'taskwire' as const,
            figure: 'completed_p99_ms',
            op: '<=' as const,
            value: 100,
          },
        ]
      : []),
    { name: '>= 2x the peer on tasks/s', target: 'ratio', figure: 'completed_per_s', op: '>=', value: 2 },
    {
      name: '>= 3x BullMQ on PostgreSQL on tasks/s',
      target: 'ratio',
      vs: 'bullmq-postgres',
      figure: 'taskwire/bullmq-postgres',
      op: '>=',
      value: 3,
    },
    {
      name: '>= 20% of the graphile-worker ceiling on tasks/s',
      target: 'ratio',
      vs: 'graphile-ceiling',
      figure: 'taskwire/graphile-ceiling',
      op: '>=',
      value: 0.2,
    },
  ],
  allTargets: ['taskwire', 'bullmq-postgres', 'bullmq-redis', 'graphile-ceiling'],
  ratioNames: ['accepted_per_s', 'completed_per_s'],
  async measure(targetName, f, ctx) {
    if (targetName === 'graphile-ceiling') return measureCeiling(f, ctx);
    if (f.peakFraction > 0 && f.rate > 0)
      throw new Error('--peak-fraction sets the rate itself: drop --rate');
    const env: Record<string, string> = {};
    if (f.serverConcurrency > 0) {
      env.TASKWIRE_CONCURRENCY = String(f.serverConcurrency);
      env.PEER_CONCURRENCY = String(f.serverConcurrency);
    }
    if (f.poolSize > 0) env.TASKWIRE_DB_POOL_SIZE = String(f.poolSize);
    const gens = Math.max(1, Math.min(generatorCount(ctx), f.users));
    return withTarget(targetName, ctx, env, (target) =>
      withGenerators(gens, ctx, async (children: Child[]) => {
        const users = Array.from({ length: gens }, (_, i) => `bench-user-${i}`);
        const tokens = await Promise.all(users.map((u) => target.token(u)));
        const per = (total: number) => split(Array.from({ length: total }), gens).map((a) => a.length);
        const n = per(f.tasks);
        const warm = per(f.warmup);
        const conc = per(f.concurrency);
        const job = (i: number, over: Partial<ThroughputJob>): Omit<ThroughputJob, 'id'> => ({
          cmd: 'throughput',
          mode: target.mode,
          httpUrl: target.httpUrl,
          wsUrl: target.socketUrl,
          token: tokens[i],
          n: n[i],
          warmup: warm[i],
          concurrency: Math.max(1, conc[i]),
          sockets: f.sockets > 0 ? Math.ceil(f.sockets / gens) : Math.min(64, Math.max(1, conc[i])),
          rate: f.rate / gens,
          body: { steps: f.steps, interval_ms: f.intervalMs },
          taskTimeoutMs: f.taskTimeout,
          laneReleaseMs: f.laneRelease,
          lean: f.genClient === 'lean',
          pauseAfterWarmup: false,
          ...over,
        });
        // --peak-fraction: the same server's peak first (closed loop), then the open loop at a
        // fraction of it. The server is warm by then (its JIT past the tier-up of the request path).
        let peak: number | undefined;
        if (f.peakFraction > 0) {
          const peakConc = per(f.peakConcurrency);
          const peakN = per(f.peakTasks);
          ctx.log(
            `${targetName}: peak first: ${f.peakTasks} tasks, closed loop, concurrency ${f.peakConcurrency}`,
          );
          const found = await Promise.all(
            children.map((g, i) =>
              g.request<ThroughputResult>(
                job(i, {
                  n: peakN[i],
                  concurrency: Math.max(1, peakConc[i]),
                  rate: 0,
                  sockets: Math.min(64, Math.max(1, peakConc[i])),
                }),
                f.taskTimeout + 30 * 60_000,
              ),
            ),
          );
          peak = completedPerS(found);
          if (!(peak > 0))
            throw new Error(`${targetName}: the closed loop completed nothing, so it has no peak`);
        }
        const rateTotal = peak !== undefined ? peak * f.peakFraction : f.rate;
        ctx.log(
          `${targetName}: ${f.warmup} warm-up + ${f.tasks} tasks, ${rateTotal > 0 ? `${rateTotal.toFixed(0)}/s open loop${peak !== undefined ? ` (${f.peakFraction} × the peak, ${peak.toFixed(0)}/s)` : ''}, cap` : 'closed loop,'} concurrency ${f.concurrency}`,
        );
        await target.probe(false); // starts the event-loop utilisation window
        const cpu = cpuWindow(target);
        const before = f.dbStats ? await target.dbWrites() : undefined;
        const bus0 = await busCounters(target);
        const statements = target.dbName ? statementCounter(target.dbName) : undefined;
        // Between the phases, the database gets what autovacuum would have given it meanwhile.
        const maintain = f.vacuum && f.warmup > 0 && target.dbName ? target.dbName : undefined;
        let maintained: Promise<void> | undefined;
        let vacuumed = 0;
        if (maintain) {
          let warmed = 0;
          for (const g of children)
            g.onNote((note) => {
              if (note.note !== 'warmed' || ++warmed < children.length) return;
              // The generators resume whatever the vacuum did; its failure ends the run below.
              maintained = vacuumIfNoAutovacuum(maintain)
                .then((ran) => {
                  vacuumed = ran ? 1 : 0;
                })
                .finally(() => Promise.all(children.map((c) => c.request({ cmd: 'resume' }))));
              maintained.catch(() => {}); // awaited after the measured phase, not unhandled until then
            });
        }
        const results = await profiled(target, ctx, 'throughput', () =>
          Promise.all(
            children.map((g, i) =>
              g.request<ThroughputResult>(
                job(i, { rate: rateTotal / gens, pauseAfterWarmup: maintain !== undefined }),
                f.taskTimeout + 30 * 60_000,
              ),
            ),
          ),
        );
        const window = cpu.stop(sum(results.map((r) => r.cpuMs)));
        const probe = await target.probe(false);
        const bus1 = await busCounters(target);
        // The peer counts the completions its worker saw and those QueueEvents relayed to rooms.
        const peerStats = target.mode === 'socketio' ? await target.stats() : undefined;
        const start = Math.min(...results.map((r) => r.start));
        const pickup = await target.pickupMs(start);
        const after = await dbWritesAfterRun(target, before);
        const statementCount = statements?.count();
        const lastAccept = Math.max(...results.map((r) => r.lastAccept));
        const accepted = sum(results.map((r) => r.accepted));
        const completed = sum(results.map((r) => r.completed));
        const failures = sum(results.map((r) => r.failures));
        const acc = summarize(concat(results.map((r) => r.acceptMs)));
        const done = summarize(concat(results.map((r) => r.doneMs)));
        const worst = worstWindow(
          concat(results.map((r) => r.doneDue)),
          concat(results.map((r) => r.doneMs)),
          WORST_WINDOW_MS,
          Math.max(1, Math.min(10, Math.floor(done.count / 10))),
        );
        const errors = mergeCounts(results.map((r) => r.errors));
        await maintained;
        const notes: string[] = [
          `${targetName}: completion detected from the socket (join reply state or the completed event)`,
        ];
        if (vacuumed) notes.push(`${targetName}: ${VACUUM_NOTE}`);
        if (failures > 0) notes.push(`${targetName}: ${failures} failures: ${topErrors(errors)}`);
        const released = sum(results.map((r) => r.released));
        if (released > 0)
          notes.push(
            `${targetName}: ${released} tasks not ended after ${f.laneRelease} ms; their slots moved on to the next task`,
          );
        const late = sum(results.map((r) => r.late));
        if (late > 0)
          notes.push(`${targetName}: ${late} open-loop ticks found every slot busy (the rate was not held)`);
        const measuredN = completed + failures;
        const missed = errors['task did not finish in time'] ?? 0;
        const relayMissed =
          peerStats?.workerCompleted !== undefined && peerStats.relayedCompleted !== undefined
            ? peerStats.workerCompleted - peerStats.relayedCompleted
            : undefined;
        if (relayMissed)
          notes.push(
            `${targetName}: QueueEvents relayed ${peerStats?.relayedCompleted} of the ${peerStats?.workerCompleted} completions its worker saw (${relayMissed} never reached a room)`,
          );
        const inWindow = completed + sum(warm);
        return {
          notes,
          figures: {
            tasks: measuredN,
            ...(peak !== undefined ? { peak_completed_per_s: peak, offered_per_s: rateTotal } : {}),
            accepted_per_s: lastAccept > start ? (accepted / (lastAccept - start)) * 1000 : Number.NaN,
            completed_per_s: completedPerS(results),
            accepted_p50_ms: acc.p50,
            accepted_p99_ms: acc.p99,
            completed_p50_ms: done.p50,
            completed_p99_ms: done.p99,
            completed_max_ms: done.max,
            // The 250 ms of due times with the slowest median: one stall, or a tail spread evenly?
            ...(worst
              ? { completed_worst_window_p50_ms: worst.p50, completed_worst_window_at_s: worst.atMs / 1000 }
              : {}),
            ...(pickup
              ? {
                  pickup_p50_ms: pickup.p50,
                  pickup_p99_ms: pickup.p99,
                  pickup_max_ms: pickup.max,
                  pickup_tasks: pickup.count,
                }
              : {}),
            failures,
            // 1: the database was vacuumed between the phases (autovacuum is off on it; --vacuum).
            vacuumed_after_warmup: vacuumed,
            // Tasks whose end the client never saw in time (counted in failures, not completed).
            missed_completions: missed,
            slots_released: released,
            ...(relayMissed !== undefined ? { queue_events_missed: relayMissed } : {}),
            ...window,
            ...busFigures(bus0, bus1),
            ...cpuPerTask(window, inWindow),
            server_elu: probe.elu,
            server_rss_mb: probe.rss / 1024 / 1024,
            ...writesPerTask(before, after, inWindow),
            ...(statementCount !== undefined ? { pg_statements_per_task: statementCount / inWindow } : {}),
          },
        };
      }),
    );
  },
});

/**
 * graphile-ceiling: a warm-up, then N no-op jobs added in batches and completed by bare
 * graphile-worker (its own process and database); completed/s up to the jobs table found empty.
 */
async function measureCeiling(f: FlagValues<typeof FLAGS>, ctx: Ctx): Promise<Measured> {
  const env: Record<string, string> = {};
  if (f.serverConcurrency > 0) env.CEILING_CONCURRENCY = String(f.serverConcurrency);
  if (f.poolSize > 0) env.CEILING_POOL_SIZE = String(f.poolSize);
  const ceiling = await startCeiling({ env: { ...env, ...ctx.serverEnv }, log: ctx.log, runId: ctx.runId });
  try {
    const cmd = (n: number) => ({
      cmd: 'run',
      n,
      batch: f.ceilingBatch,
      backlog: f.ceilingBacklog,
      producers: f.ceilingProducers,
    });
    const jobs = f.ceilingJobs > 0 ? f.ceilingJobs : f.tasks;
    ctx.log(
      `graphile-ceiling: ${f.warmup} warm-up + ${jobs} no-op jobs, addJobs of ${f.ceilingBatch}, backlog ${f.ceilingBacklog}`,
    );
    if (f.warmup > 0) await ceiling.child.request<CeilingResult>(cmd(f.warmup), 10 * 60_000);
    const before = f.dbStats ? await ceiling.dbWrites() : undefined;
    const statements = statementCounter(ceiling.dbName);
    const meter = new CpuMeter(ceiling.child.pid, ['postgres']);
    meter.start();
    const r = await ceiling.child.request<CeilingResult>(cmd(jobs), 30 * 60_000);
    const m = meter.stop();
    const after = await dbWritesAfterRun(ceiling, before);
    const statementCount = statements?.count();
    const notes = [
      'graphile-ceiling: bare graphile-worker, no-op task, jobs added with addJobs, localQueue, batched completion; ' +
        'completed/s up to the jobs table found empty (every completion committed)',
    ];
    if (r.jobsLeft > 0) notes.push(`graphile-ceiling: ${r.jobsLeft} jobs still in the table after 30 s`);
    const postgres = m.helpers.postgres ?? 0;
    const window: Figures = {
      server_cpu_pct: m.cpuPct,
      server_sys_pct: m.sysPct,
      postgres_cpu_pct: postgres,
      generator_cpu_pct: 0,
      irq_cpu_pct: m.irqPct,
      others_cpu_pct: Math.max(0, m.machinePct - m.irqPct - m.cpuPct - postgres),
      window_s: m.wallMs / 1000,
    };
    return {
      notes,
      figures: {
        tasks: r.completed,
        completed_per_s: (r.completed / r.ms) * 1000,
        completed_per_s_by_last_return: (r.completed / r.lastDoneMs) * 1000,
        failures: r.completed === jobs && r.jobsLeft === 0 ? 0 : jobs - r.completed + r.jobsLeft,
        add_jobs_calls: r.addCalls,
        ...window,
        ...cpuPerTask(window, r.completed),
        ...writesPerTask(before, after, r.completed),
        ...(statementCount !== undefined ? { pg_statements_per_task: statementCount / r.completed } : {}),
      },
    };
  } finally {
    await ceiling.stop();
  }
}
