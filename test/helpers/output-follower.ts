// A client that assembles a task's streamed output the way api.md tells one to: phoenix.js with
// join params as a function, `{output_from: next}`, so every rejoin asks for exactly what is
// missing; `output_reset` past what it has clears it. It counts how often each index arrived, so a
// test can check every chunk came exactly once.
import { type Channel, Socket } from 'phoenix';
import { waitFor } from './wait.ts';

export interface OutputFollower {
  /** The text assembled from the valid output (chunks as strings). */
  text(): string;
  /** Deliveries per index (1 each when nothing came twice). */
  deliveries: Map<number, number>;
  /** Indexes that arrived past a gap (0 when none). */
  gaps: number;
  resets: Array<{ attempt: number; start: number }>;
  /** Ok join replies (the first join, then each rejoin). */
  joins: number;
  done: boolean;
  socket: Socket;
  channel: Channel;
  /** Resolves once the task's terminal event (or a terminal join reply) arrived. */
  finished(timeoutMs?: number): Promise<void>;
  close(): void;
}

export function followOutput(socketUrl: string, token: string, taskId: string, from = 0): OutputFollower {
  const socket = new Socket(socketUrl, {
    params: { token },
    heartbeatIntervalMs: 1000,
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
  });
  socket.connect();
  const parts = new Map<number, string>();
  let start = 0;
  let next = from;
  /** Once the task is known to be over: its output ends here. */
  let endsAt: number | undefined;
  const checkDone = () => {
    if (endsAt !== undefined && next >= endsAt) f.done = true;
  };
  const f: OutputFollower = {
    text: () =>
      [...parts.entries()]
        .filter(([i]) => i >= start)
        .sort((a, b) => a[0] - b[0])
        .map(([, s]) => s)
        .join(''),
    deliveries: new Map(),
    gaps: 0,
    resets: [],
    joins: 0,
    done: false,
    socket,
    channel: socket.channel(`task:${taskId}`, () => ({ output_from: next })),
    finished: (timeoutMs = 30_000) =>
      waitFor(() => f.done, `task ${taskId} to finish`, timeoutMs).then(() => {}),
    close: () => socket.disconnect(),
  };
  const channel = f.channel;
  channel.on('output', (p: { index: number; data: string }) => {
    f.deliveries.set(p.index, (f.deliveries.get(p.index) ?? 0) + 1);
    if (p.index > next) f.gaps += 1;
    parts.set(p.index, p.data);
    next = Math.max(next, p.index + 1);
    checkDone();
  });
  channel.on('output_reset', (p: { attempt: number; start: number }) => {
    f.resets.push(p);
    if (next <= p.start) {
      for (const i of [...parts.keys()]) if (i < p.start) parts.delete(i);
      start = p.start;
      next = p.start;
    }
  });
  for (const end of ['completed', 'failed', 'cancelled'])
    channel.on(end, () => {
      f.done = true;
    });
  const onJoin = (reply: { task: { status: string; output: { start: number; next: number } } }) => {
    f.joins += 1;
    const o = reply.task.output;
    if (next < o.start) {
      // The valid output starts past what we have: what we have is void.
      parts.clear();
      next = o.start;
    }
    start = Math.max(start, o.start);
    if (['completed', 'failed', 'cancelled'].includes(reply.task.status)) {
      endsAt = o.next;
      checkDone();
    }
  };
  channel.join().receive('ok', onJoin);
  // Rejoins (after a reconnect) go through the same push: phoenix keeps the receive hooks.
  return f;
}
