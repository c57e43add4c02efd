// Task types the benchmark loads into taskwire (TASKWIRE_TASKS). `bench_demo` is the built-in
// `demo` loop (sleep interval_ms, then progress i/steps) behind a start gate: it waits until
// `start_at` (epoch ms), so that every subscriber of a fanout run has joined before step 1 and
// each one can be checked for every seq. The peer's worker runs the same loop.
import Type from 'typebox';
import { defineTask } from '../../src/index.ts';
import { demoTask, sleep } from '../../src/tasks/index.ts';

// A type alias (not an interface) so it is assignable to the demo's Record<string, unknown> input.
type BenchInput = {
  steps?: number;
  interval_ms?: number;
  start_at?: number;
};

export const benchDemo = defineTask<BenchInput, unknown>({
  name: 'bench_demo',
  input: Type.Object({
    steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    interval_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    start_at: Type.Optional(Type.Integer({ minimum: 0 })),
  }),
  async run(ctx) {
    const wait = (ctx.input.start_at ?? 0) - Date.now();
    if (wait > 0) await sleep(wait, ctx.signal);
    return demoTask.run(ctx);
  },
});
