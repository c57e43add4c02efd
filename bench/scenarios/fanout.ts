// fanout: T tasks x S subscribers; every task runs the demo loop (K steps at interval I) behind
// a start gate, so all subscribers have joined before step 1. Figures: delivered events/s,
// latency (receive time - payload `at`) p50/p95/p99/max, and the check that every subscriber saw
// every seq after its join reply exactly once and in order, through the terminal event.
// --channels-per-socket packs that many subscriptions (distinct tasks) on one socket.

import type { CollectResult, ConnectResult, SocketPlan } from '../generator/main.ts';
import { bool, int, ms, str } from '../lib/args.ts';
import { sleep } from '../lib/procs.ts';
import { concat, summarize } from '../lib/stats.ts';
import { createTasks } from '../lib/targets.ts';
import {
  cpuWindow,
  defineScenario,
  MB,
  mergeCounts,
  profiled,
  socketsPerGenerator,
  split,
  sum,
  topErrors,
  withGenerators,
  withTarget,
} from './common.ts';

export const fanout = defineScenario({
  name: 'fanout',
  summary: 'T tasks x S subscribers, K steps at I ms; delivered events/s, latency, seq check',
  flags: {
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
  },
  goals: (f) => {
    const offered = (f.tasks * f.subs * 1000) / Math.max(1, f.interval);
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
    const subscriptions = f.tasks * f.subs;
    const socketCount = Math.ceil(subscriptions / f.channelsPerSocket);
    const gens = Math.max(ctx.genProcs, Math.ceil(socketCount / socketsPerGenerator()));
    const env: Record<string, string> = {
      TASKWIRE_MAX_CHANNELS: String(Math.max(100, f.channelsPerSocket)),
    };
    if (f.tasks > 100) {
      env.TASKWIRE_CONCURRENCY = String(f.tasks);
      env.PEER_CONCURRENCY = String(f.tasks);
    }
    return withTarget(targetName, ctx, env, (target) =>
      withGenerators(gens, ctx, async (children) => {
        const token = await target.token('bench-fanout');
        const gate =
          f.gate > 0
            ? f.gate
            : Math.round(2000 + socketCount * (targetName === 'peer' ? 4 : 2) + subscriptions * 0.3);
        const before = f.dbStats ? await target.dbWrites() : undefined;
        const stats0 = await target.stats();
        const startAt = Date.now() + gate;
        const ids = await createTasks(
          target,
          token,
          Array.from({ length: f.tasks }, () => ({
            type: 'bench_demo',
            steps: f.steps,
            interval_ms: f.interval,
            start_at: startAt,
          })),
        );
        // Subscription i watches task i mod T; consecutive ones share a socket, so a socket's
        // tasks are distinct as long as channelsPerSocket <= T.
        const plans: SocketPlan[] = [];
        for (let i = 0; i < subscriptions; i += f.channelsPerSocket) {
          const tasks: string[] = [];
          for (let k = i; k < Math.min(subscriptions, i + f.channelsPerSocket); k++)
            tasks.push(ids[k % f.tasks]);
          plans.push({ token: 0, tasks });
        }
        ctx.log(
          `${targetName}: ${f.tasks} tasks x ${f.subs} subscribers on ${plans.length} sockets (${f.channelsPerSocket}/socket), ` +
            `${f.steps} steps at ${f.interval} ms, step 1 in ${gate} ms`,
        );
        const parts = split(plans, gens);
        let offset = 0;
        const connects = await Promise.all(
          children.map((g, i) => {
            const job = {
              cmd: 'connect',
              mode: target.mode,
              url: target.socketUrl,
              tokens: [token],
              sockets: parts[i],
              concurrency: Math.max(1, Math.ceil(f.connectConcurrency / gens)),
              sourceIps: plans.length > 20_000 ? 250 : 1,
              indexOffset: offset,
              heartbeatMs: 30_000,
              sampleLatency: true,
              lean: f.genClient === 'lean',
            };
            offset += parts[i].length;
            return g.request<ConnectResult>(job, 30 * 60_000);
          }),
        );
        const joinedAt = Date.now();
        const joinSlackMs = startAt - joinedAt;
        ctx.log(
          `${targetName}: joined ${sum(connects.map((c) => c.joins - c.joinFailures))} subscriptions, ` +
            `${joinSlackMs >= 0 ? `${joinSlackMs} ms before step 1` : `${-joinSlackMs} ms AFTER step 1 (raise --gate)`}`,
        );
        if (joinSlackMs > 0) await sleep(joinSlackMs);
        await target.probe(false);
        const cpu = cpuWindow(target);
        const timeoutMs = f.steps * f.interval * 5 + 60_000;
        const collected = await profiled(target, ctx, 'fanout', () =>
          Promise.all(
            children.map((g) => g.request<CollectResult>({ cmd: 'collect', timeoutMs }, timeoutMs + 60_000)),
          ),
        );
        const window = cpu.stop(sum(collected.map((c) => c.cpuMs)));
        const windowMs = Number(window.window_s) * 1000;
        const probe = await target.probe(false);
        const stats1 = await target.stats();
        await Promise.all(children.map((g) => g.request({ cmd: 'close' }, 120_000)));
        let after: typeof before;
        if (before) {
          await sleep(11_000); // PostgreSQL backends flush their statistics at most every 10 s when idle
          after = await target.dbWrites();
        }

        const events = sum(collected.map((c) => c.events));
        const firstRecv = Math.min(...collected.filter((c) => c.events > 0).map((c) => c.firstRecv));
        const lastRecv = Math.max(...collected.map((c) => c.lastRecv));
        const spanMs = lastRecv - firstRecv;
        const lat = summarize(concat(collected.map((c) => c.latency)));
        const bySeq = latencyBySeq(collected);
        const join = summarize(concat(connects.map((c) => c.joinMs)));
        const subs = sum(collected.map((c) => c.subs));
        const complete = sum(collected.map((c) => c.subsComplete));
        const missing = sum(collected.map((c) => c.missing));
        const dups = sum(collected.map((c) => c.dups));
        const joinFailures = sum(connects.map((c) => c.joinFailures));
        const connectFailures = sum(connects.map((c) => c.connectFailures));
        const closes = sum(collected.map((c) => c.stats.unexpectedCloses));
        const seqErrors = missing + dups + (subs - complete) + joinFailures + connectFailures;
        const byName = mergeCounts(collected.map((c) => c.byName));
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
        // machine's softirq time, and the generators'.
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
      }),
    );
  },
});

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
