// idle: the memory of a server doing nothing (issue 14). A fresh server on a fresh database
// (DATABASE_URL set: no embedded PostgreSQL), read once /readyz answers and `--settle` has
// passed; then the same with N idle sockets, each joined to one of M long tasks (live actors
// that send nothing). RSS is VmRSS of /proc/<pid>/status, as the process stands (no GC forced
// before it: a real server gets none either), split into anonymous and file-backed pages (the
// node binary's pages are most of the latter); the heap figures come from the probe at the same
// moments, and once more after a full GC at the end. `--from dist` runs the build (the bundled
// server, dist/bundle/main.js; dist/cli/main.js in a tree from before the bundle) instead of the
// TypeScript sources (src/cli/main.ts).

import type { ConnectResult, SocketPlan } from '../generator/main.ts';
import { int, ms, str } from '../lib/args.ts';
import { sleep, waitFor } from '../lib/procs.ts';
import { createTasks, type Probe } from '../lib/targets.ts';
import { defineScenario, MB, split, sum, withGenerators, withTarget } from './common.ts';

// bin/taskwire.js runs a checkout's build when it is fresh: the sources are named directly.
const ENTRIES: Record<'src' | 'dist', string> = {
  src: 'src/cli/main.ts',
  dist: 'dist/bundle/main.js|dist/cli/main.js',
};

function memory(prefix: string, p: Probe): Record<string, number | null> {
  const mb = (v: number | undefined) => (v === undefined ? null : Number((v / MB).toFixed(1)));
  return {
    [`${prefix}_rss_mb`]: mb(p.rss),
    [`${prefix}_rss_anon_mb`]: mb(p.rssAnon),
    [`${prefix}_rss_file_mb`]: mb(p.rssFile),
    [`${prefix}_heap_used_mb`]: mb(p.heapUsed),
    [`${prefix}_heap_total_mb`]: mb(p.heapTotal),
    [`${prefix}_external_mb`]: mb(p.external),
    [`${prefix}_array_buffers_mb`]: mb(p.arrayBuffers),
    [`${prefix}_v8_malloced_mb`]: mb(p.malloced),
  };
}

export const idle = defineScenario({
  name: 'idle',
  summary: 'memory of a fresh server after /readyz, then with N idle joined sockets (issue 14)',
  flags: {
    sockets: int(1000, 'idle sockets, each joined to one task channel'),
    tasks: int(10, 'long-running tasks (live actors, silent) the sockets join'),
    settle: ms(3000, 'pause after /readyz and after the last join before reading memory'),
    from: str<'src' | 'dist'>(
      'src',
      'src: src/cli/main.ts (TypeScript sources, type stripping); dist: dist/bundle/main.js, the build',
      ['src', 'dist'],
    ),
    connectConcurrency: int(100, 'sockets being opened and joined at once'),
  },
  goals: () => [
    { name: '<= 80 MB RSS ready', target: 'taskwire', figure: 'ready_rss_mb', op: '<=', value: 80 },
    {
      name: '<= 100 MB RSS at the sockets',
      target: 'taskwire',
      figure: 'joined_rss_mb',
      op: '<=',
      value: 100,
    },
    { name: '0 failures', target: 'taskwire', figure: 'failures', op: '==', value: 0 },
  ],
  ratioNames: ['joined_rss_mb', 'ready_rss_mb'],
  async measure(targetName, f, ctx) {
    if (targetName !== 'taskwire') throw new Error('idle measures taskwire only (--target taskwire)');
    const before = process.env.BENCH_TASKWIRE_ENTRY;
    process.env.BENCH_TASKWIRE_ENTRY = ENTRIES[f.from];
    // The stock server: no bench task module (it would load the sources and typebox besides).
    const env = { TASKWIRE_TASKS: '', TASKWIRE_SOCKET_IDLE_MS: '120000' };
    try {
      return await withTarget(targetName, ctx, env, (target) =>
        withGenerators(1, ctx, async ([gen]) => {
          await sleep(f.settle);
          const ready = await target.probe(false);
          const token = await target.token('bench-idle');
          const ids = await createTasks(
            target,
            token,
            Array.from({ length: f.tasks }, () => ({ type: 'demo', steps: 1, interval_ms: 600_000 })),
          );
          await waitFor(
            'every task to run',
            async () => ((await target.stats()).actors ?? 0) >= f.tasks || undefined,
            60_000,
            200,
          );
          const tasksOnly = await target.probe(false);
          const plans: SocketPlan[] = Array.from({ length: f.sockets }, (_, i) => ({
            token: 0,
            tasks: [ids[i % ids.length]],
          }));
          ctx.log(`taskwire: opening ${f.sockets} sockets, each joined to one of ${f.tasks} tasks`);
          const [connect] = split(plans, 1).map((sockets) => ({
            cmd: 'connect',
            mode: target.mode,
            url: target.socketUrl,
            tokens: [token],
            sockets,
            concurrency: f.connectConcurrency,
            sourceIps: 1,
            indexOffset: 0,
            heartbeatMs: 30_000,
            sampleLatency: false,
          }));
          const result = await gen.request<ConnectResult>(connect, 10 * 60_000);
          const joined = result.opened - result.joinFailures;
          await sleep(f.settle);
          const withSockets = await target.probe(false);
          const serverStats = await target.stats();
          const gcd = await target.probe(true);
          await gen.request({ cmd: 'close' }, 120_000);
          return {
            notes: [
              `server started from ${target.entry}; RSS read as the process stands, heap "after GC" after two full GCs`,
            ],
            figures: {
              from: f.from,
              sockets: f.sockets,
              joined,
              server_sockets: serverStats.sockets,
              failures: result.connectFailures + result.joinFailures,
              ...memory('ready', ready),
              ...memory('tasks', tasksOnly),
              ...memory('joined', withSockets),
              ...memory('joined_after_gc', gcd),
              rss_per_socket_kb: Number(
                ((withSockets.rss - tasksOnly.rss) / Math.max(1, joined) / 1024).toFixed(1),
              ),
              connect_cpu_ms: sum([result.cpuMs]),
            },
          };
        }),
      );
    } finally {
      if (before === undefined) delete process.env.BENCH_TASKWIRE_ENTRY;
      else process.env.BENCH_TASKWIRE_ENTRY = before;
    }
  },
  table(figures) {
    const stages = [
      ['after /readyz', 'ready'],
      ['+ tasks running', 'tasks'],
      ['+ sockets joined', 'joined'],
      ['+ sockets, after GC', 'joined_after_gc'],
    ];
    const cols = ['rss', 'rss_anon', 'rss_file', 'heap_used', 'heap_total', 'external', 'array_buffers'];
    return [
      ['stage (MB)', 'RSS', 'anon', 'file', 'heap used', 'heap total', 'external', 'arrayBuffers'],
      ...stages.map(([label, key]) => [
        label,
        ...cols.map((c) => {
          const v = figures[`${key}_${c}_mb`];
          return typeof v === 'number' ? v.toFixed(1) : '-';
        }),
      ]),
    ];
  },
});
