// An example task module: `npx taskwire start --tasks ./examples/my-tasks.js`.
// Every export made with defineTask() becomes a task type clients can POST.
import { defineTask } from 'taskwire';

export const countWords = defineTask({
  name: 'count-words',
  maxAttempts: 2,
  timeoutMs: 60_000,
  async run(ctx) {
    const text = String(ctx.input.text ?? '');
    const words = text.split(/\s+/).filter(Boolean);
    const counts = {};
    for (const [i, word] of words.entries()) {
      if (ctx.signal.aborted) throw ctx.signal.reason; // cancelled, timed out or shutting down
      counts[word] = (counts[word] ?? 0) + 1;
      if (i % 100 === 0) ctx.progress(i / words.length, `${i} of ${words.length} words`);
    }
    return { words: words.length, distinct: Object.keys(counts).length };
  },
});
