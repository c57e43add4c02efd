// The built-in `demo` type (api.md): sleeps interval_ms, reports i/steps, for i = 1..steps;
// fail_at_step throws at that step (to exercise retries); the result is {steps}.
import Type from 'typebox';
import { defineTask } from './task-type.ts';

const DemoInput = Type.Object({
  steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  interval_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
  fail_at_step: Type.Optional(Type.Integer({ minimum: 1 })),
  message: Type.Optional(Type.String({ maxLength: 1000 })),
});

interface DemoInput {
  steps?: number;
  interval_ms?: number;
  fail_at_step?: number;
  message?: string;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export const demoTask = defineTask<DemoInput, { steps: number }>({
  name: 'demo',
  input: DemoInput,
  async run(ctx) {
    const steps = ctx.input.steps ?? 5;
    const interval = ctx.input.interval_ms ?? 2000;
    for (let i = 1; i <= steps; i++) {
      if (interval > 0) await sleep(interval, ctx.signal);
      else if (i % 256 === 0) await new Promise((resolve) => setImmediate(resolve)); // let I/O in
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (ctx.input.fail_at_step === i) throw new Error(`demo failed at step ${i}`);
      ctx.progress(i / steps, ctx.input.message);
    }
    return { steps };
  },
});
