// `watch --output` without --json: prints a task's streamed output on stdout as it comes, exactly
// as the handler produced it (the SDK resumes by index across reconnects, so no chunk is printed
// twice or skipped), and nothing else there, so `> file` keeps only the text. A reset (a retry
// starting the output over) and a failure are told on stderr; what was printed stays printed.
import { chunkText, type Task, type TaskHandle } from '../client/index.ts';

export interface OutputStreamIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** stdout is a terminal: end the text with a newline so the prompt starts on its own line. */
  tty: boolean;
}

/** Streams the output until the task has ended and all of it is printed; resolves with the end. */
export async function printOutput(handle: TaskHandle, io: OutputStreamIo): Promise<Task['status']> {
  let last = '';
  for await (const item of handle.output()) {
    if (item.kind === 'reset') {
      io.err.write(
        `${last && !last.endsWith('\n') ? '\n' : ''}taskwire: attempt ${item.attempt} starts the output over (the text above is void)\n`,
      );
      last = '';
      continue;
    }
    const text = chunkText(item.data);
    if (!text) continue;
    last = text;
    if (!io.out.write(text)) await new Promise((resolve) => io.out.once('drain', resolve));
  }
  if (io.tty && last && !last.endsWith('\n')) io.out.write('\n');
  const status = await handle.result().then(
    () => 'completed' as const,
    () => handle.state.status,
  );
  const s = handle.state;
  if (status === 'failed')
    io.err.write(`taskwire: ${s.task_id} failed: ${s.error?.message ?? 'unknown error'}\n`);
  else if (status === 'cancelled') io.err.write(`taskwire: ${s.task_id} was cancelled\n`);
  return status;
}
