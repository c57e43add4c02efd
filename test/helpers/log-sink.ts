// A pino destination that keeps what is logged, for tests that read the logs.
import { Writable } from 'node:stream';

export interface LogSink {
  stream: Writable;
  /** Every line, parsed. */
  lines: Array<Record<string, any>>;
  /** Everything written, as text. */
  text(): string;
}

export function logSink(): LogSink {
  const chunks: string[] = [];
  const lines: Array<Record<string, any>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      const text = String(chunk);
      chunks.push(text);
      for (const line of text.split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { stream, lines, text: () => chunks.join('') };
}
