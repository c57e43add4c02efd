// sockets: N sockets, each joined to one task, held open with heartbeats. Figures: server RSS
// (and V8 heap, after a full GC) per socket, connect and join latency p50/p99, failures
// (refused connects, refused joins, sockets closed while held). Client source addresses are
// spread over 127.0.0.x so tens of thousands of sockets don't run out of ephemeral ports, and
// each process's open-files limit is raised as far as the machine allows.

import type { ConnectResult, SocketPlan } from '../generator/main.ts';
import { int, ms } from '../lib/args.ts';
import { nofileHardLimit, sleep, waitFor } from '../lib/procs.ts';
import { concat, summarize } from '../lib/stats.ts';
import { createTasks } from '../lib/targets.ts';
import {
  cpuWindow,
  defineScenario,
  generatorCount,
  KB,
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

export const sockets = defineScenario({
  name: 'sockets',
  summary: 'N sockets each joined to a task, held with heartbeats; RSS per socket, join latency, failures',
  flags: {
    sockets: int(5000, 'sockets to open (each joins one task)'),
    tasks: int(100, 'long-running tasks the sockets are spread over'),
    users: int(10, 'users owning the tasks (sockets use their owner token)'),
    hold: ms(15_000, 'how long the sockets are held after the last join'),
    heartbeat: ms(30_000, 'client heartbeat period (Phoenix default 30 s)'),
    connectConcurrency: int(200, 'sockets being opened and joined at once'),
    sourceIps: int(250, 'spread client source addresses over 127.0.0.1..127.0.0.<n>'),
    settle: ms(2000, 'pause before each memory probe'),
  },
  goals: () => [
    { name: '50,000 joined sockets', target: 'taskwire', figure: 'joined', op: '>=', value: 50_000 },
    { name: '0 failures', target: 'taskwire', figure: 'failures', op: '==', value: 0 },
    { name: '<= 15 KB RSS per socket', target: 'taskwire', figure: 'rss_per_socket_kb', op: '<=', value: 15 },
  ],
  ratioNames: ['rss_per_socket_kb', 'heap_per_socket_kb', 'join_p99_ms'],
  async measure(targetName, f, ctx) {
    const gens = Math.max(generatorCount(ctx), Math.ceil(f.sockets / socketsPerGenerator()));
    const serverFiles = nofileHardLimit();
    const notes: string[] = [];
    if (f.sockets + 200 > serverFiles)
      notes.push(
        `${targetName}: ${f.sockets} sockets need more open files than this machine's hard limit (${serverFiles}); ` +
          'sockets past it are refused by the kernel/server and count as failures',
      );
    const env: Record<string, string> = {
      TASKWIRE_MAX_SOCKETS_PER_USER: String(f.sockets + 10),
      TASKWIRE_SOCKET_IDLE_MS: String(Math.max(60_000, f.heartbeat * 2 + 10_000)),
    };
    if (f.tasks > 100) {
      env.TASKWIRE_CONCURRENCY = String(f.tasks);
      env.PEER_CONCURRENCY = String(f.tasks);
    }
    return withTarget(targetName, ctx, env, (target) =>
      withGenerators(gens, ctx, async (children) => {
        const users = Array.from({ length: Math.max(1, f.users) }, (_, i) => `bench-user-${i}`);
        const tokens = await Promise.all(users.map((u) => target.token(u)));
        // Long tasks (10 min per step): live actors that send nothing while the sockets are held.
        const byUser = split(
          Array.from({ length: f.tasks }, (_, i) => i),
          users.length,
        );
        const owner: number[] = [];
        const ids: string[] = [];
        for (const [u, idx] of byUser.entries()) {
          const made = await createTasks(
            target,
            tokens[u],
            idx.map(() => ({ steps: 1, interval_ms: 600_000 })),
          );
          ids.push(...made);
          for (const _ of made) owner.push(u);
        }
        await waitFor(
          'every task to run',
          async () => {
            const s = await target.stats();
            const running = s.actors ?? s.active ?? 0;
            return running >= f.tasks ? true : undefined;
          },
          60_000,
          200,
        );
        await sleep(f.settle);
        const base = await target.probe(true);
        const plans: SocketPlan[] = Array.from({ length: f.sockets }, (_, i) => ({
          token: owner[i % ids.length],
          tasks: [ids[i % ids.length]],
        }));
        const parts = split(plans, gens);
        ctx.log(
          `${targetName}: opening ${f.sockets} sockets from ${gens} generator process(es), ` +
            `${f.connectConcurrency} at a time, sources 127.0.0.1..${f.sourceIps}`,
        );
        let offset = 0;
        const cpuConnect = cpuWindow(target);
        const connects = await profiled(target, ctx, 'connect', () =>
          Promise.all(
            children.map((g, i) => {
              const job = {
                cmd: 'connect',
                mode: target.mode,
                url: target.socketUrl,
                tokens,
                sockets: parts[i],
                concurrency: Math.max(1, Math.ceil(f.connectConcurrency / gens)),
                sourceIps: f.sourceIps,
                indexOffset: offset,
                heartbeatMs: f.heartbeat,
                sampleLatency: false,
              };
              offset += parts[i].length;
              return g.request<ConnectResult>(job, 60 * 60_000);
            }),
          ),
        );
        const connectWindow = cpuConnect.stop(sum(connects.map((c) => c.cpuMs)));
        const opened = sum(connects.map((c) => c.opened));
        const joined = opened - sum(connects.map((c) => c.joinFailures));
        ctx.log(`${targetName}: ${opened} open, ${joined} joined; holding ${f.hold} ms`);
        await sleep(f.settle);
        const full = await target.probe(true);
        const serverStats = await target.stats();
        const cpuHold = cpuWindow(target);
        const holds = await Promise.all(
          children.map((g) =>
            g.request<{
              stats: { heartbeatsSent: number; heartbeatsOk: number; unexpectedCloses: number };
              cpuMs: number;
            }>({ cmd: 'hold', ms: f.hold }, f.hold + 60_000),
          ),
        );
        const holdWindow = cpuHold.stop(sum(holds.map((h) => h.cpuMs)));
        const held = await target.probe(false);
        await Promise.all(children.map((g) => g.request({ cmd: 'close' }, 300_000)));

        const connectFailures = sum(connects.map((c) => c.connectFailures));
        const joinFailures = sum(connects.map((c) => c.joinFailures));
        const closes = sum(holds.map((h) => h.stats.unexpectedCloses));
        const join = summarize(concat(connects.map((c) => c.joinMs)));
        const conn = summarize(concat(connects.map((c) => c.connectMs)));
        const errors = mergeCounts(connects.map((c) => c.errors));
        if (Object.keys(errors).length > 0) notes.push(`${targetName}: errors: ${topErrors(errors)}`);
        const per = Math.max(1, joined);
        return {
          notes,
          figures: {
            sockets: f.sockets,
            joined,
            server_sockets: serverStats.sockets,
            failures: connectFailures + joinFailures + closes,
            connect_failures: connectFailures,
            join_failures: joinFailures,
            closed_while_held: closes,
            connect_p50_ms: conn.p50,
            connect_p99_ms: conn.p99,
            join_p50_ms: join.p50,
            join_p99_ms: join.p99,
            joins_per_s: joined / Math.max(1, connectWindow.window_s as number),
            rss_base_mb: base.rss / MB,
            rss_joined_mb: full.rss / MB,
            rss_per_socket_kb: (full.rss - base.rss) / per / KB,
            heap_per_socket_kb: (full.heapUsed - base.heapUsed) / per / KB,
            external_per_socket_kb: (full.external - base.external) / per / KB,
            rss_after_hold_mb: held.rss / MB,
            heartbeats_sent: sum(holds.map((h) => h.stats.heartbeatsSent)),
            heartbeats_ok: sum(holds.map((h) => h.stats.heartbeatsOk)),
            connect_server_cpu_pct: connectWindow.server_cpu_pct,
            others_cpu_pct: connectWindow.others_cpu_pct,
            connect_generator_cpu_pct: connectWindow.generator_cpu_pct,
            hold_server_cpu_pct: holdWindow.server_cpu_pct,
            hold_generator_cpu_pct: holdWindow.generator_cpu_pct,
          },
        };
      }),
    );
  },
});
