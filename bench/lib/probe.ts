// Preloaded into a server under test (`node --expose-gc --import bench/lib/probe.ts ...`): answers
// the benchmark's questions over IPC (memory after a full GC, event-loop utilisation), runs V8's
// sampling CPU profiler (the one behind --cpu-prof) over just the measured window, and stops
// the server if the benchmark goes away. It changes nothing else in the process.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { constants, monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';

interface ProbeRequest {
  id: number;
  cmd: string;
  gc?: boolean;
  lastResort?: boolean;
  /** profile-stop, heap-snapshot: where to write the profile or the snapshot */
  file?: string;
  /** profile-start: sampling interval in microseconds */
  intervalUs?: number;
}

if (process.send) {
  const send = process.send.bind(process);
  let mark = performance.eventLoopUtilization();
  let session: Session | undefined;
  // GC pauses and event-loop delay since the previous probe (the measured window is between two
  // probes). The observer only counts; the delay histogram samples every 10 ms.
  const gcs = { count: 0, ms: 0, maxMs: 0, major: 0, majorMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcs.count += 1;
      gcs.ms += e.duration;
      if (e.duration > gcs.maxMs) gcs.maxMs = e.duration;
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gcs.major += 1;
        gcs.majorMs += e.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();

  const handlers: Record<string, (msg: ProbeRequest) => Promise<unknown> | unknown> = {
    probe(msg) {
      const gc = (globalThis as { gc?: (options?: object) => void }).gc;
      if (msg.gc && gc) {
        gc();
        gc();
      }
      // The GC V8 runs when memory is short: it also hands pooled pages back to the system.
      if (msg.lastResort && gc) gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
      // No file descriptor needed (process.memoryUsage() opens /proc/self, which fails once a
      // server has used every file it may open); the benchmark reads RSS from /proc itself.
      const heap = getHeapStatistics();
      let arrayBuffers: number | undefined;
      try {
        arrayBuffers = process.memoryUsage().arrayBuffers;
      } catch {
        // out of file descriptors: the figure is left out
      }
      const now = performance.eventLoopUtilization();
      const elu = performance.eventLoopUtilization(now, mark).utilization;
      mark = now;
      const gc0 = { ...gcs };
      Object.assign(gcs, { count: 0, ms: 0, maxMs: 0, major: 0, majorMs: 0 });
      const loopDelay = {
        p50: delay.percentile(50) / 1e6,
        p99: delay.percentile(99) / 1e6,
        max: delay.max / 1e6,
      };
      delay.reset();
      return {
        gc: gc0,
        loopDelay,
        heapUsed: heap.used_heap_size,
        heapTotal: heap.total_heap_size,
        external: heap.external_memory,
        arrayBuffers,
        /** V8's own malloc'd memory (compiler zones and the like) and committed heap pages. */
        malloced: heap.malloced_memory,
        physical: heap.total_physical_size,
        elu,
        gcExposed: Boolean(gc),
      };
    },
    /** A .heapsnapshot of the server (after a full GC), for finding what holds memory. */
    'heap-snapshot'(msg) {
      (globalThis as { gc?: () => void }).gc?.();
      return { file: writeHeapSnapshot(msg.file) };
    },
    async 'profile-start'(msg) {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: msg.intervalUs ?? 1000 });
      await session.post('Profiler.start');
      return { started: true };
    },
    async 'profile-stop'(msg) {
      if (!session) return { file: null };
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      if (msg.file) writeFileSync(msg.file, JSON.stringify(profile));
      return { file: msg.file ?? null };
    },
  };

  process.on('message', (raw: unknown) => {
    const msg = raw as ProbeRequest;
    const handler = msg && handlers[msg.cmd];
    if (!handler) return;
    Promise.resolve()
      .then(() => handler(msg))
      .then(
        (result) => send({ replyTo: msg.id, result }),
        (err: unknown) => send({ replyTo: msg.id, error: String(err) }),
      );
  });
  // An orphaned server (the benchmark died) stops itself.
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.channel?.unref();
}
