// A task's streamed output for the task page: GET /api/tasks/:id/output as Server-Sent Events,
// read with fetch (so the token goes in the Authorization header, never in a URL), parsed here,
// resumed with Last-Event-ID after a cut, until the `end` event. Chunks are numbered; an
// `output_reset` voids those below its `start` (a new attempt started over).

export interface OutputChunk {
  index: number;
  data: unknown;
  attempt: number;
}

export interface OutputHandlers {
  chunk(c: OutputChunk): void;
  reset(start: number): void;
  end(): void;
  error(message: string): void;
}

/** Follows the output until it ends or `signal` aborts; reconnects (bounded backoff) after a cut. */
export async function followOutput(
  id: string,
  token: () => string,
  on: OutputHandlers,
  signal: AbortSignal,
): Promise<void> {
  let last = -1;
  for (let tries = 0; !signal.aborted; tries++) {
    try {
      const headers: Record<string, string> = {
        authorization: `Bearer ${token()}`,
        accept: 'text/event-stream',
      };
      if (last >= 0) headers['last-event-id'] = String(last);
      const res = await fetch(`/api/tasks/${encodeURIComponent(id)}/output`, { headers, signal });
      if (!res.ok || !res.body) {
        on.error(`output: HTTP ${res.status}`);
        if (res.status >= 400 && res.status < 500) return;
      } else {
        tries = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut = buffer.indexOf('\n\n');
          while (cut !== -1) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            cut = buffer.indexOf('\n\n');
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (event === 'output') {
              const c = JSON.parse(data) as OutputChunk;
              last = c.index;
              on.chunk(c);
            } else if (event === 'output_reset') {
              on.reset((JSON.parse(data) as { start: number }).start);
            } else if (event === 'end') {
              on.end();
              return;
            }
          }
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      on.error(`output: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** tries)));
  }
}
