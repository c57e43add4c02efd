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

type StreamInput = {
  tokens?: number;
  interval_ms?: number;
  start_at?: number;
  progress_every?: number;
};

/**
 * `bench_stream`: the `generate` loop (sleep interval_ms, then `ctx.output(chunk)`) behind the same
 * start gate, for the streams scenario. Output events carry no timestamp, so each chunk says its
 * own index and when it was produced: `<index>@<Date.now()> `; a client takes the latency and
 * checks the index from the text. Progress every `progress_every` chunks (0: never).
 */
export const benchStream = defineTask<StreamInput, { tokens: number }>({
  name: 'bench_stream',
  input: Type.Object({
    tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    interval_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    start_at: Type.Optional(Type.Integer({ minimum: 0 })),
    progress_every: Type.Optional(Type.Integer({ minimum: 0 })),
  }),
  async run(ctx) {
    const wait = (ctx.input.start_at ?? 0) - Date.now();
    if (wait > 0) await sleep(wait, ctx.signal);
    const tokens = ctx.input.tokens ?? 2000;
    const interval = ctx.input.interval_ms ?? 20;
    const every = ctx.input.progress_every ?? 0;
    for (let i = 0; i < tokens; i++) {
      if (interval > 0) await sleep(interval, ctx.signal);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      ctx.output(`${i}@${Date.now()} `);
      if (every > 0 && (i + 1) % every === 0) ctx.progress((i + 1) / tokens);
    }
    return { tokens };
  },
});
