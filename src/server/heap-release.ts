// Gives memory back to the system after a burst. V8 keeps the heap pages a burst freed in a pool
// for reuse, and a young generation grown to its largest, and hands them back only on a
// memory-reducing GC, which Node never asks for (browsers do, when idle): after a storm of hostile
// input the process kept ~125 MB of free pages for good, and after 1,000 sockets joined ~10 MB of
// young generation. When the resident size has grown by `thresholdBytes` above its floor, this runs
// that GC; and by a quarter of it once the event loop has gone quiet (the burst is over, and a
// pause there delays nobody). Never while the loop is half busy or more: the GC pauses it for
// 0.1 to 0.4 s, every client waits that long, and the memory is the load's working set anyway (at
// 60 % of the peak task rate it put a 100-200 ms step into every run's p99). It must not run GCs in
// a loop: at most one per 30 s of each kind, fewer while they free little.
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';

type Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

export interface HeapReleaseOptions {
  /** Growth of the resident set above its floor that triggers a GC; 0 turns it off. */
  thresholdBytes: number;
  /** How often the resident size is read. */
  intervalMs: number;
  log: Logger;
  /** The resident set size (default: this process's). */
  rss?: () => number;
  /** The memory-reducing GC (default: V8's, last-resort flavour). */
  collect?: () => void;
  /** The event loop's utilisation (0..1) since the previous call (default: this process's). */
  utilization?: () => number;
}

/**
 * V8's memory-reducing GC (a last-resort major GC, in sync), reached without --expose-gc (the flag
 * takes effect for new contexts); undefined where V8 refuses.
 */
function memoryReducingGc(): (() => void) | undefined {
  let gc = (globalThis as { gc?: Gc }).gc;
  if (!gc) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as Gc;
    } catch {
      return undefined;
    }
  }
  const collect = gc;
  return () => collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/**
 * One memory-reducing GC once the process has started (the first server of a process only): loading
 * the modules and building the app leave garbage and a young generation grown to its largest
 * (together ~40 MB of a ~150 MB fresh server), which an idle server would otherwise keep. Returns
 * the pause in ms, or undefined when it did not run.
 */
export function releaseStartupMemory(): number | undefined {
  if (startupReleased) return undefined;
  startupReleased = true;
  const collect = memoryReducingGc();
  if (!collect) return undefined;
  const started = performance.now();
  collect();
  return performance.now() - started;
}

let startupReleased = false;

/** The least time between two memory-reducing GCs (one pauses the loop for 0.1 to 0.4 s here). */
const MIN_GAP_MS = 30_000;
/** The most: after GCs that freed little the gap doubles up to this. */
const MAX_GAP_MS = 5 * 60_000;
/** GCs in a row that freed little, after which the growth is taken for live memory. */
const USELESS_IN_A_ROW = 3;
/** The event loop counts as quiet below this utilisation over one look. */
const QUIET_UTILIZATION = 0.1;
/** Growth, as a share of the threshold, that a quiet loop gives back. */
const QUIET_SHARE = 0.25;
/** At or above this utilisation the loop is serving a load: no GC then, whatever the growth. */
const LOADED_UTILIZATION = 0.5;

/** The event loop's utilisation since the previous call. */
function loopUtilization(): () => number {
  let mark = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, mark).utilization;
    mark = now;
    return u;
  };
}

/**
 * Starts watching; returns the stop function. The floor is the lowest resident size seen; growth
 * of `thresholdBytes` above it triggers a GC, and so does growth of a quarter of that at a look
 * when the event loop was quiet (under 10 % busy since the previous look); none at a look when it
 * was half busy or more (the GC waits for the first look below that). A GC that frees less
 * than half the growth that triggered it (the growth was live memory, e.g. mid-burst) is followed
 * by another at the shortest gap (a burst still live at the first is over by then, and its pages
 * go back at once); from the second in a row the gap doubles, and after three in a row the floor
 * rises to the new level. One that frees more resets the gap. (The GC at start puts the floor
 * below a warmed-up server's working set, so the first GC after start often frees little.)
 */
export function startHeapRelease(opts: HeapReleaseOptions): () => void {
  if (opts.thresholdBytes <= 0) return () => {};
  // One watch per process: several servers in one process (tests, embedders) share its memory.
  if (watching) {
    watching.users += 1;
    return release(watching);
  }
  const watch = { users: 1, stop: watchResidentMemory(opts) };
  watching = watch;
  return release(watch);
}

interface Watch {
  users: number;
  stop: () => void;
}

let watching: Watch | undefined;

function release(watch: Watch): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    watch.users -= 1;
    if (watch.users === 0) {
      watch.stop();
      if (watching === watch) watching = undefined;
    }
  };
}

function watchResidentMemory(opts: HeapReleaseOptions): () => void {
  const collect = opts.collect ?? memoryReducingGc();
  if (!collect) {
    opts.log.warn('cannot reach V8 gc(): memory freed by a burst stays with the process');
    return () => {};
  }
  const rss = opts.rss ?? (() => process.memoryUsage.rss());
  const utilization = opts.utilization ?? loopUtilization();
  let floor = rss();
  let gapMs = MIN_GAP_MS;
  // Kept apart: a GC in a quiet moment must not hold back the next burst's (which would leave the
  // burst's memory with the process until the gap has passed).
  const lastGc = { quiet: 0, busy: 0 };
  let useless = 0;
  /** The resident size just before the last GC, until the next look says what it freed. */
  let before: number | undefined;
  /** The growth that triggered the last GC: one that frees less than half of it freed little. */
  let trigger = opts.thresholdBytes;
  const timer = setInterval(() => {
    const now = rss();
    const used = utilization();
    const quiet = used < QUIET_UTILIZATION;
    if (before !== undefined) {
      // V8 unmaps the freed pages on a background thread: what the GC gave back shows now.
      const freed = before - now;
      before = undefined;
      if (freed >= trigger / 2) {
        gapMs = MIN_GAP_MS;
        useless = 0;
      } else if (++useless >= USELESS_IN_A_ROW) {
        floor = now;
        useless = 0;
        gapMs = MIN_GAP_MS;
      } else {
        // The first: maybe mid-burst, so look again soon. From the second: live growth, back off.
        if (useless > 1) gapMs = Math.min(MAX_GAP_MS, gapMs * 2);
      }
      opts.log.debug(
        { rss_mb: mb(now), freed_mb: mb(freed), floor_mb: mb(floor) },
        'memory-reducing GC done',
      );
    }
    if (now < floor) floor = now;
    if (used >= LOADED_UTILIZATION) return;
    const kind = quiet ? 'quiet' : 'busy';
    const needed = quiet ? opts.thresholdBytes * QUIET_SHARE : opts.thresholdBytes;
    if (now - floor < needed || Date.now() - lastGc[kind] < gapMs) return;
    const started = performance.now();
    collect();
    lastGc[kind] = Date.now();
    before = now;
    trigger = needed;
    // Rare (at most one per 30 s): worth a line, with the pause it cost.
    opts.log.info(
      { rss_mb: mb(now), floor_mb: mb(floor), quiet, gc_ms: Math.round(performance.now() - started) },
      'resident memory grew: memory-reducing GC',
    );
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

const mb = (bytes: number) => Math.round(bytes / 1_048_576);
