// throughput: N tasks of `demo` {steps: 1, interval_ms: 0} submitted over HTTP at concurrency C
// (closed loop) or at a fixed rate (open loop, --rate). Each client submits, joins the task's
// channel (room) on its socket, and counts the task completed when the socket says so (the join
// reply's state or the `completed` event). Figures: accepted/s, completed/s, submit->accepted and
// submit->completed percentiles.

import type { ThroughputJob, ThroughputResult } from '../generator/main.ts';
import { bool, int, ms, num } from '../lib/args.ts';
import type { Child } from '../lib/procs.ts';
import { sleep } from '../lib/procs.ts';
import { concat, summarize } from '../lib/stats.ts';
import {
  busCounters,
  busFigures,
  cpuWindow,
  defineScenario,
  mergeCounts,
  profiled,
  split,
  sum,
  topErrors,
  withGenerators,
  withTarget,
} from './common.ts';

export const throughput = defineScenario({
  name: 'throughput',
  summary: 'N one-step tasks submitted at concurrency C (or --rate R/s); accepted/s, completed/s, latency',
  flags: {
    tasks: int(6000, 'tasks measured'),
    warmup: int(500, 'tasks run first and not measured'),
    concurrency: int(64, 'tasks in flight at once (closed loop), or the cap on in-flight tasks with --rate'),
    rate: num(0, 'open loop: submit this many tasks per second (latency counted from when each was due)'),
    sockets: int(0, 'client sockets used to watch tasks (0: one per concurrency slot, at most 64)'),
    steps: int(1, 'demo steps per task'),
    intervalMs: int(0, 'demo interval_ms'),
    taskTimeout: ms(60_000, 'a task not completed after this counts as a failure'),
    users: int(1, 'submitting users (one generator process each at most)'),
    serverConcurrency: int(0, 'jobs run at once by the server (0: the server default, 100)'),
    poolSize: int(0, 'taskwire database pool size (0: the default, 10)'),
    dbStats: bool(
      true,
      'wait for PostgreSQL statistics to settle and count row writes per task (adds ~11 s)',
    ),
  },
  goals: (f) => [
    {
      name: 'tasks/s submitted->completed >= 2000',
      target: 'taskwire',
      figure: 'completed_per_s',
      op: '>=',
      value: 2000,
    },
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
  ],
  ratioNames: ['accepted_per_s', 'completed_per_s'],
  async measure(targetName, f, ctx) {
    const env: Record<string, string> = {};
    if (f.serverConcurrency > 0) {
      env.TASKWIRE_CONCURRENCY = String(f.serverConcurrency);
      env.PEER_CONCURRENCY = String(f.serverConcurrency);
    }
    if (f.poolSize > 0) env.TASKWIRE_DB_POOL_SIZE = String(f.poolSize);
    const gens = Math.max(1, Math.min(ctx.genProcs, f.users));
    return withTarget(targetName, ctx, env, (target) =>
      withGenerators(gens, ctx, async (children: Child[]) => {
        const users = Array.from({ length: gens }, (_, i) => `bench-user-${i}`);
        const tokens = await Promise.all(users.map((u) => target.token(u)));
        const per = (total: number) => split(Array.from({ length: total }), gens).map((a) => a.length);
        const n = per(f.tasks);
        const warm = per(f.warmup);
        const conc = per(f.concurrency);
        const rate = f.rate / gens;
        ctx.log(
          `${targetName}: ${f.warmup} warm-up + ${f.tasks} tasks, ${f.rate > 0 ? `${f.rate}/s open loop, cap` : 'closed loop,'} concurrency ${f.concurrency}`,
        );
        await target.probe(false); // starts the event-loop utilisation window
        const cpu = cpuWindow(target);
        const before = f.dbStats ? await target.dbWrites() : undefined;
        const bus0 = await busCounters(target);
        const results = await profiled(target, ctx, 'throughput', () =>
          Promise.all(
            children.map((g, i) =>
              g.request<ThroughputResult>(
                {
                  cmd: 'throughput',
                  mode: target.mode,
                  httpUrl: target.httpUrl,
                  wsUrl: target.socketUrl,
                  token: tokens[i],
                  n: n[i],
                  warmup: warm[i],
                  concurrency: Math.max(1, conc[i]),
                  sockets: f.sockets > 0 ? Math.ceil(f.sockets / gens) : Math.min(64, Math.max(1, conc[i])),
                  rate,
                  body: { steps: f.steps, interval_ms: f.intervalMs },
                  taskTimeoutMs: f.taskTimeout,
                } satisfies Omit<ThroughputJob, 'id'>,
                f.taskTimeout + 30 * 60_000,
              ),
            ),
          ),
        );
        const window = cpu.stop(sum(results.map((r) => r.cpuMs)));
        const probe = await target.probe(false);
        const bus1 = await busCounters(target);
        const pickup = await target.pickupMs();
        if (before) await sleep(11_000); // PostgreSQL backends flush their statistics at most every 10 s when idle
        const after = before ? await target.dbWrites() : undefined;
        const start = Math.min(...results.map((r) => r.start));
        const lastAccept = Math.max(...results.map((r) => r.lastAccept));
        const lastDone = Math.max(...results.map((r) => r.lastDone));
        const accepted = sum(results.map((r) => r.accepted));
        const completed = sum(results.map((r) => r.completed));
        const failures = sum(results.map((r) => r.failures));
        const acc = summarize(concat(results.map((r) => r.acceptMs)));
        const done = summarize(concat(results.map((r) => r.doneMs)));
        const errors = mergeCounts(results.map((r) => r.errors));
        const notes: string[] = [
          `${targetName}: completion detected from the socket (join reply state or the completed event)`,
        ];
        if (failures > 0) notes.push(`${targetName}: ${failures} failures: ${topErrors(errors)}`);
        const late = sum(results.map((r) => r.late));
        if (late > 0)
          notes.push(`${targetName}: ${late} open-loop ticks found every slot busy (the rate was not held)`);
        const measuredN = completed + failures;
        return {
          notes,
          figures: {
            tasks: measuredN,
            accepted_per_s: lastAccept > start ? (accepted / (lastAccept - start)) * 1000 : Number.NaN,
            completed_per_s: lastDone > start ? (completed / (lastDone - start)) * 1000 : Number.NaN,
            accepted_p50_ms: acc.p50,
            accepted_p99_ms: acc.p99,
            completed_p50_ms: done.p50,
            completed_p99_ms: done.p99,
            completed_max_ms: done.max,
            ...(pickup
              ? { pickup_p50_ms: pickup.p50, pickup_p99_ms: pickup.p99, pickup_max_ms: pickup.max }
              : {}),
            failures,
            ...window,
            ...busFigures(bus0, bus1),
            server_elu: probe.elu,
            server_rss_mb: probe.rss / 1024 / 1024,
            ...(before && after
              ? {
                  taskwire_row_writes_per_task:
                    (after.taskwire - before.taskwire) / Math.max(1, completed + sum(warm)),
                  queue_row_writes_per_task:
                    (after.queue - before.queue) / Math.max(1, completed + sum(warm)),
                  commits_per_task: (after.commits - before.commits) / Math.max(1, completed + sum(warm)),
                }
              : {}),
          },
        };
      }),
    );
  },
});
