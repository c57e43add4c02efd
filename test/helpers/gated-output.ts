// A task type for resume-after-reset tests: attempt 1 writes "void " and waits until the test opens
// its gate, then fails; attempt 2 writes "kept " and "text" and completes. A client that follows it
// sees an output_reset between the two attempts and must end with exactly "kept text".
import { defineTask } from '../../src/tasks/index.ts';

export function gatedOutputTask(name: string, failure = 'attempt 1 gives up') {
  /** task id -> opens the gate of its waiting attempt 1. */
  const gates = new Map<string, () => void>();
  const task = defineTask({
    name,
    maxAttempts: 2,
    run: async (ctx) => {
      if (ctx.attempt === 1) {
        ctx.output('void ');
        await new Promise<void>((resolve) => gates.set(ctx.taskId, resolve));
        throw new Error(failure);
      }
      ctx.output('kept ');
      ctx.output('text');
      return 'ok';
    },
  });
  return { task, gates };
}
