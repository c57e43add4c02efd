// The built-in `generate` type (api.md): a stand-in for an LLM call with the seed's input
// `{"prompt": ...}`, deterministic so clients can check what they assembled. Chunk i is word
// i mod n of the prompt, then a space (none after the last); progress (i+1)/tokens.
import Type from 'typebox';
import { sleep } from './demo.ts';
import { defineTask } from './task-type.ts';

const GenerateInput = Type.Object({
  prompt: Type.String({ minLength: 1, maxLength: 10_000, pattern: '\\S' }),
  tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  interval_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
});

interface GenerateInput {
  prompt: string;
  tokens?: number;
  interval_ms?: number;
}

/** The whole text `generate` streams for this input (tests and clients compare against it). */
export function generatedText(prompt: string, tokens: number): string {
  const words = prompt.split(/\s+/).filter(Boolean);
  let text = '';
  for (let i = 0; i < tokens; i++) text += words[i % words.length] + (i < tokens - 1 ? ' ' : '');
  return text;
}

export const generateTask = defineTask<GenerateInput, { tokens: number; length: number }>({
  name: 'generate',
  input: GenerateInput,
  async run(ctx) {
    const tokens = ctx.input.tokens ?? 50;
    const interval = ctx.input.interval_ms ?? 50;
    const words = ctx.input.prompt.split(/\s+/).filter(Boolean);
    let length = 0;
    for (let i = 0; i < tokens; i++) {
      if (interval > 0) await sleep(interval, ctx.signal);
      else if (i % 256 === 255) await new Promise((resolve) => setImmediate(resolve)); // let I/O in
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const chunk = words[i % words.length] + (i < tokens - 1 ? ' ' : '');
      length += chunk.length;
      ctx.output(chunk);
      ctx.progress((i + 1) / tokens);
    }
    return { tokens, length };
  },
});
