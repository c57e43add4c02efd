// The open-loop schedule: submission i is due at begin + i/rate, and its latency counts from when
// it was due, so a slow server cannot slow the offered load down (no coordinated omission).

export interface OpenLoopPhase {
  /** First index of the phase. */
  from: number;
  /** One past its last index. */
  to: number;
  /** Submissions per second. */
  rate: number;
  /** At most this many in flight; a due submission past it waits (and counts as late). */
  concurrency: number;
  /** Runs submission i, due at `dueAt` (ms since the epoch); settles when it has ended. */
  run: (i: number, dueAt: number) => Promise<void>;
}

/**
 * Runs indices [from, to) on the schedule and resolves once every one of them has ended.
 * Returns how many timer ticks found every slot busy (the rate was not held).
 *
 * A warm-up is its own phase: the measured one starts its clock after the warm-up has drained.
 * Sharing one schedule would hand the measured submissions whatever backlog the cold start
 * left (they are due on time but queue behind it), and that start-up transient, not the steady
 * state, would set the p99.
 */
export function openLoop(phase: OpenLoopPhase): Promise<number> {
  const { from, to, rate, concurrency, run } = phase;
  if (from >= to) return Promise.resolve(0);
  return new Promise((resolve) => {
    const begin = Date.now();
    let issued = from;
    let inflight = 0;
    let finished = from;
    let late = 0;
    const timer = setInterval(() => {
      const due = Math.min(to, from + Math.floor(((Date.now() - begin) * rate) / 1000) + 1);
      while (issued < due) {
        if (inflight >= concurrency) {
          late += 1;
          break;
        }
        const i = issued++;
        inflight += 1;
        void run(i, begin + ((i - from) * 1000) / rate)
          .catch(() => {}) // the caller counts its own failures
          .finally(() => {
            inflight -= 1;
            if (++finished === to) {
              clearInterval(timer);
              resolve(late);
            }
          });
      }
    }, 1);
  });
}
