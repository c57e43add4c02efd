// actors: memory per task held by the server. N long tasks run at once (live: an actor plus its
// running attempt), then finish (taskwire: the actor lingers for late joiners), then are freed.
// At each stage the server's RSS and V8 heap (after a full GC) are compared with the baseline
// taken before the tasks: (stage - baseline) / N. The peer's stages are "N active jobs" and
// "N completed jobs" (it keeps nothing per finished job in the process; Redis holds them).
import { int, ms } from '../lib/args.ts';
import { sleep, waitFor } from '../lib/procs.ts';
import type { Probe, RunningTarget } from '../lib/targets.ts';
import { createTasks } from '../lib/targets.ts';
import { defineScenario, KB, MB, withTarget } from './common.ts';

async function settle(target: RunningTarget): Promise<Probe> {
  await sleep(500);
  return target.probe(true);
}

export const actors = defineScenario({
  name: 'actors',
  summary: 'memory per live and per lingering task actor (RSS and V8 heap after GC, per task)',
  flags: {
    tasks: int(2000, 'tasks running at once'),
    live: ms(15_000, 'how long each task runs (one demo step of this interval)'),
    linger: ms(8000, "taskwire's TASKWIRE_LINGER_MS: how long a finished actor stays"),
    warmup: int(300, 'short tasks run (and freed) before the baseline, to warm the process'),
  },
  goals: () => [],
  ratioNames: [],
  async measure(targetName, f, ctx) {
    const env: Record<string, string> = {
      TASKWIRE_CONCURRENCY: String(f.tasks),
      PEER_CONCURRENCY: String(f.tasks),
      TASKWIRE_LINGER_MS: String(f.linger),
    };
    return withTarget(targetName, ctx, env, async (target) => {
      const token = await target.token('bench-actors');
      const count = async () => {
        const s = await target.stats();
        return targetName === 'taskwire'
          ? { live: s.actors ?? 0, done: s.attemptsCompleted ?? 0 }
          : { live: s.active ?? 0, done: s.completed ?? 0 };
      };
      ctx.log(`${targetName}: warm-up with ${f.warmup} short tasks`);
      await createTasks(
        target,
        token,
        Array.from({ length: f.warmup }, () => ({ steps: 1, interval_ms: 0 })),
      );
      await waitFor(
        'warm-up tasks to finish',
        async () => ((await count()).done >= f.warmup ? true : undefined),
        60_000,
      );
      // Lingering warm-up actors must be gone before the baseline.
      await waitFor(
        'warm-up actors to be freed',
        async () => ((await count()).live === 0 ? true : undefined),
        f.linger + 30_000,
        250,
      );
      const base = await settle(target);

      ctx.log(`${targetName}: ${f.tasks} tasks of ${f.live} ms`);
      const t0 = Date.now();
      await createTasks(
        target,
        token,
        Array.from({ length: f.tasks }, () => ({ steps: 1, interval_ms: f.live })),
        64,
      );
      await waitFor(
        'every task to run',
        async () => ((await count()).live >= f.tasks ? true : undefined),
        f.live,
        100,
      );
      const startedMs = Date.now() - t0;
      const live = await settle(target);
      if (Date.now() - t0 > f.live)
        throw new Error(`starting ${f.tasks} tasks took longer than --live; raise it`);

      await waitFor(
        'every task to finish',
        async () => ((await count()).done >= f.warmup + f.tasks ? true : undefined),
        f.live + 120_000,
        100,
      );
      const finished = await settle(target);
      const liveAfterFinish = (await count()).live;
      let freed: Probe | undefined;
      if (targetName === 'taskwire') {
        await waitFor(
          'finished actors to be freed',
          async () => ((await count()).live === 0 ? true : undefined),
          f.linger + 30_000,
          250,
        );
        freed = await settle(target);
      }
      const per = (p: Probe, key: 'rss' | 'heapUsed') => (p[key] - base[key]) / f.tasks / KB;
      const lingerLabel = targetName === 'taskwire' ? 'lingering' : 'completed';
      return {
        notes:
          targetName === 'taskwire'
            ? [`taskwire: ${liveAfterFinish} actors were lingering at the "${lingerLabel}" probe`]
            : [
                'peer: a completed job keeps no memory in the process (Redis holds it); its figure shows what remains',
              ],
        figures: {
          tasks: f.tasks,
          start_all_s: startedMs / 1000,
          rss_base_mb: base.rss / MB,
          heap_base_mb: base.heapUsed / MB,
          live_rss_per_task_kb: per(live, 'rss'),
          live_heap_per_task_kb: per(live, 'heapUsed'),
          [`${lingerLabel}_rss_per_task_kb`]: per(finished, 'rss'),
          [`${lingerLabel}_heap_per_task_kb`]: per(finished, 'heapUsed'),
          ...(freed
            ? { freed_rss_per_task_kb: per(freed, 'rss'), freed_heap_per_task_kb: per(freed, 'heapUsed') }
            : {}),
        },
      };
    });
  },
});
