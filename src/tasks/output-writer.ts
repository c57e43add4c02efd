// Write-behind of streamed output: actors with unsaved chunks are collected and written together,
// ONE multi-row statement per flush for every task (never a write per chunk). A failed flush puts
// the chunks back and is retried on the next tick; a batch that fails for another reason than an
// unreachable database is split, so one task's bad segment never holds back the others'. Before an
// attempt's end is written, `drain` waits until its output is stored.
import type pg from 'pg';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, type OutputSegment, writeOutput } from '../db/index.ts';
import type { TaskActor } from './actor.ts';
import { OutputError } from './errors.ts';
import { WriteBehind } from './write-behind.ts';

export interface OutputWriterOptions {
  pool: pg.Pool;
  intervalMs: number;
  log: Logger;
  /** Chunks per stored segment (a row). */
  segmentChunks?: number;
  /** After each flush: segments (rows), chunks, milliseconds (metrics). */
  onFlush?: (rows: number, chunks: number, ms: number) => void;
}

export class OutputWriter {
  readonly #o: OutputWriterOptions;
  readonly #behind: WriteBehind;
  failures = 0;

  constructor(opts: OutputWriterOptions) {
    this.#o = opts;
    this.#behind = new WriteBehind(opts.intervalMs, (batch) => this.#flushOnce(batch));
  }

  start(): void {
    this.#behind.start();
  }

  markDirty(actor: TaskActor): void {
    this.#behind.markDirty(actor);
  }

  get pending(): number {
    return this.#behind.pending;
  }

  /** Writes every dirty actor's chunks; concurrent calls share one flush. Rejects if the write failed. */
  flush(): Promise<void> {
    return this.#behind.flush();
  }

  /** Resolves once every chunk `actor` has produced so far is stored; rejects while that fails. */
  async drain(actor: TaskActor): Promise<void> {
    while (actor.hasPendingOutput) {
      this.#behind.markDirty(actor);
      const inFlight = this.#behind.flushing;
      // A flush already under way may have taken only part of the chunks: wait for it, then look again.
      if (inFlight) await inFlight.catch(() => {});
      else await this.flush();
    }
  }

  async #flushOnce(batch: Set<TaskActor>): Promise<void> {
    const segments: OutputSegment[] = [];
    const owners = new Map<OutputSegment, TaskActor>();
    for (const actor of batch) {
      for (const segment of actor.takeOutput(this.#o.segmentChunks ?? 500)) {
        segments.push(segment);
        owners.set(segment, actor);
      }
    }
    if (segments.length === 0) return;
    const started = performance.now();
    try {
      await this.#write(segments, owners);
      this.#o.onFlush?.(
        segments.length,
        segments.reduce((n, s) => n + s.chunks.length, 0),
        performance.now() - started,
      );
    } catch (err) {
      this.failures += 1;
      for (const actor of new Set(owners.values())) {
        actor.outputUnsent();
        this.#behind.markDirty(actor);
      }
      this.#o.log.warn({ err, segments: segments.length }, 'output flush failed; will retry');
      throw err;
    }
  }

  async #write(segments: OutputSegment[], owners: Map<OutputSegment, TaskActor>): Promise<void> {
    try {
      const written = await writeOutput(this.#o.pool, segments);
      this.#saved(segments, owners, written);
    } catch (err) {
      if (isDatabaseUnavailable(err) || segments.length === 1) {
        if (!isDatabaseUnavailable(err)) this.#reject(owners.get(segments[0])!, err);
        else throw err;
        return;
      }
      // One bad segment must not hold back the others: each task's alone.
      const byActor = new Map<TaskActor, OutputSegment[]>();
      for (const s of segments) byActor.set(owners.get(s)!, [...(byActor.get(owners.get(s)!) ?? []), s]);
      for (const [actor, own] of byActor) {
        try {
          this.#saved(own, owners, await writeOutput(this.#o.pool, own));
        } catch (alone) {
          if (isDatabaseUnavailable(alone)) throw alone;
          this.#reject(actor, alone);
        }
      }
    }
  }

  #saved(segments: OutputSegment[], owners: Map<OutputSegment, TaskActor>, written: Set<string>): void {
    for (const s of segments) {
      // Refused segments belong to an attempt that is no longer current: nothing to keep either.
      if (!written.has(s.taskId))
        this.#o.log.warn({ task_id: s.taskId }, 'output refused: the attempt is no longer current');
      owners.get(s)!.outputSaved(s.first + s.chunks.length);
    }
  }

  /** A segment the database refuses for a reason of its own: the attempt fails (not retried). */
  #reject(actor: TaskActor, err: unknown): void {
    this.#o.log.error({ err, task_id: actor.id }, 'output could not be stored; the attempt fails');
    actor.outputSaved(Number.MAX_SAFE_INTEGER);
    const reason = new OutputError(
      `the output could not be stored: ${(err as Error)?.message ?? String(err)}`,
    );
    if (!actor.attempt.signal.aborted) actor.attempt.abort(reason);
  }

  async stop(): Promise<void> {
    await this.#behind.stop();
  }
}
