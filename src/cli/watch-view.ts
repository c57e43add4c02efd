// Shows followed tasks until they end: live bars in a terminal (one per task: status, percent,
// message, ETA), plain lines when stdout is not a terminal, NDJSON events with --json (with
// `output` and `output_reset` lines too when following the output). It renders what the SDK
// hands it and never talks to the server itself.
import cliProgress, { type Options, type Params, type SingleBar } from 'cli-progress';

const { Format, MultiBar } = cliProgress;

import {
  type OutputChunk,
  TASK_EVENT_NAMES,
  type Task,
  type TaskEventBase,
  type TaskHandle,
} from '../client/index.ts';

export type WatchMode = 'bars' | 'lines' | 'json';

export interface WatchOutcome {
  completed: number;
  failed: number;
  cancelled: number;
}

/** Per task: what the ETA and the message column need beyond the task's state. */
class Tracked {
  readonly handle: TaskHandle;
  /** The attempt the rate is measured over, when its progress was first seen, and from what. */
  #attempt = -1;
  #since = 0;
  #from = 0;
  /** The latest progress seen and when. */
  #progress = 0;
  #progressAt = 0;
  /** Set by `retrying`, cleared by the next start. */
  retry: { message: string; at: string } | undefined;
  /** The seq of the last event heard (a state with another seq came from a rejoin). */
  eventSeq = -1;

  constructor(handle: TaskHandle) {
    this.handle = handle;
    this.observe();
  }

  get state(): Readonly<Task> {
    return this.handle.state;
  }

  observe(now = Date.now()): void {
    const s = this.state;
    if (s.status === 'running' && s.attempt !== this.#attempt) {
      this.#attempt = s.attempt;
      this.#since = now;
      this.#from = s.progress;
      this.#progress = s.progress;
      this.#progressAt = now;
      this.retry = undefined;
    } else if (s.progress !== this.#progress) {
      this.#progress = s.progress;
      this.#progressAt = now;
    }
  }

  /**
   * Seconds left at the rate this attempt has shown so far, counting down between updates;
   * undefined until there is a rate.
   */
  eta(now = Date.now()): number | undefined {
    const s = this.state;
    if (s.status !== 'running') return undefined;
    const done = this.#progress - this.#from;
    const took = this.#progressAt - this.#since;
    if (done <= 0 || took <= 0) return undefined;
    const left = (took / done) * (1 - this.#progress) - (now - this.#progressAt);
    return Math.max(0, left) / 1000;
  }

  message(): string {
    const s = this.state;
    if (s.status === 'failed') return s.error?.message ?? 'failed';
    if (this.retry && s.status !== 'running') {
      return `retry at ${new Date(this.retry.at).toLocaleTimeString()}: ${this.retry.message}`;
    }
    return s.message ?? '';
  }
}

/**
 * The short name of a task on screen: the last 8 characters of its id (a UUIDv7 begins with
 * its timestamp, so tasks created together share their first characters).
 */
export function shortId(id: string): string {
  return id.slice(-8);
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const COLORS: Record<string, string> = {
  queued: '\x1b[2m',
  running: '\x1b[36m',
  completed: '\x1b[32m',
  failed: '\x1b[31m',
  cancelled: '\x1b[33m',
};
const RESET = '\x1b[0m';

/** One bar's line: `id  type  [bar] pct  status  ETA  message`, cut to the terminal's width. */
function barLine(t: Tracked, options: Options, params: Params, color: boolean, width: number): string {
  const s = t.state;
  const pct = `${Math.floor(s.progress * 100)}%`.padStart(4);
  const status = (t.retry && s.status === 'queued' ? 'retrying' : s.status).padEnd(9);
  const eta = s.status === 'running' ? `ETA ${formatDuration(t.eta())}` : '';
  const head = `${shortId(s.task_id)}  ${s.type.slice(0, 10).padEnd(10)} ${Format.BarFormat(params.progress, options)} ${pct}  `;
  const tail = `  ${eta.padEnd(10)} `;
  const room = Math.max(0, width - head.length - status.length - tail.length);
  const message = t.message().replace(/\s+/g, ' ').slice(0, room);
  const paint = color ? (COLORS[s.status] ?? '') : '';
  return `${head}${paint}${status}${paint ? RESET : ''}${tail}${message}`;
}

export interface WatchViewOptions {
  mode: WatchMode;
  out?: NodeJS.WriteStream;
  /** JSON mode: also a line per output chunk and reset; a task ends once its output is all in. */
  output?: boolean;
}

/** Follows the handles until each has ended; resolves with how they ended. */
export class WatchView {
  readonly #mode: WatchMode;
  readonly #out: NodeJS.WriteStream;
  readonly #output: boolean;
  readonly #tracked: Tracked[] = [];
  #bars: cliProgress.MultiBar | undefined;
  readonly #barOf = new Map<Tracked, SingleBar>();

  constructor(opts: WatchViewOptions) {
    this.#mode = opts.mode;
    this.#out = opts.out ?? process.stdout;
    this.#output = opts.output ?? false;
    if (this.#mode === 'bars') {
      const color = Boolean(this.#out.isTTY) && !process.env.NO_COLOR;
      this.#bars = new MultiBar(
        {
          stream: this.#out,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          barsize: 30,
          fps: 10,
          format: (options, params, payload: { tracked: Tracked }) =>
            barLine(payload.tracked, options, params, color, (this.#out.columns || 120) - 1),
        },
        { format: '', barCompleteChar: '\u2588', barIncompleteChar: '\u2591' },
      );
    }
  }

  /** Adds a task and resolves when it has ended (never rejects). */
  follow(handle: TaskHandle): Promise<Task['status']> {
    const t = new Tracked(handle);
    this.#tracked.push(t);
    if (this.#bars) {
      this.#barOf.set(t, this.#bars.create(100, t.state.progress * 100, { tracked: t }));
    }
    this.#print(t);
    for (const name of TASK_EVENT_NAMES) {
      handle.on(name, (payload: TaskEventBase & { error?: { message: string }; retry_at?: string }) => {
        if (name === 'retrying')
          t.retry = { message: payload.error?.message ?? '', at: payload.retry_at ?? '' };
        t.eventSeq = payload.seq;
        if (this.#mode === 'json') this.#line(JSON.stringify({ event: name, ...payload }));
      });
    }
    handle.on('update', (state) => {
      t.observe();
      this.#barOf.get(t)?.update(state.progress * 100, { tracked: t });
      // In JSON, a state no event carried (a rejoin's catch-up) gets its own line.
      if (this.#mode === 'lines' || state.seq !== t.eventSeq) this.#print(t);
    });
    const ended = handle.result().then(
      () => 'completed' as const,
      () => handle.state.status,
    );
    if (!this.#output) return ended;
    if (this.#mode === 'json') {
      const chunkLine = ({ kind, ...chunk }: OutputChunk) =>
        this.#line(JSON.stringify({ event: 'output', task_id: handle.id, ...chunk }));
      // What arrived before this view was made first, then each new one, in index order.
      for (const chunk of handle.chunks) chunkLine(chunk);
      handle.on('output', chunkLine);
      handle.on('output_reset', ({ kind, ...reset }) =>
        this.#line(JSON.stringify({ event: 'output_reset', task_id: handle.id, ...reset })),
      );
    }
    // The end may be learned on a rejoin before the last chunks (which follow the reply) are in.
    return drain(handle.output()).then(() => ended);
  }

  /** Waits for every task followed so far; stops the bars. */
  async finish(ends: Promise<Task['status']>[]): Promise<WatchOutcome> {
    const statuses = await Promise.all(ends);
    this.stop();
    return {
      completed: statuses.filter((s) => s === 'completed').length,
      failed: statuses.filter((s) => s === 'failed').length,
      cancelled: statuses.filter((s) => s === 'cancelled').length,
    };
  }

  /** Stops drawing (restores the cursor); safe to call twice. */
  stop(): void {
    if (!this.#bars) return;
    for (const [t, bar] of this.#barOf) bar.update(t.state.progress * 100, { tracked: t });
    this.#bars.stop();
    this.#bars = undefined;
  }

  readonly #bucket = new WeakMap<Tracked, string>();
  #print(t: Tracked): void {
    const s = t.state;
    if (this.#mode === 'json') {
      this.#line(JSON.stringify({ event: 'state', task: s }));
      return;
    }
    if (this.#mode !== 'lines') return;
    // One line per status change or per tenth of progress, not one per event.
    const key = `${s.status}:${s.attempt}:${Math.floor(s.progress * 10)}`;
    if (this.#bucket.get(t) === key) return;
    this.#bucket.set(t, key);
    const message = t.message();
    this.#line(
      `${shortId(s.task_id)} ${s.status} ${Math.floor(s.progress * 100)}%${message ? ` ${message}` : ''}`,
    );
  }

  #line(text: string): void {
    this.#out.write(`${text}\n`);
  }
}

async function drain(items: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of items);
}
