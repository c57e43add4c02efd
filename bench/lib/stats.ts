// Latency samples and their summary (exact percentiles over sorted samples), plus a growable
// Float64Array the generator fills without allocating per sample.

export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** A growable array of doubles (ms). Transferable over IPC as its `view()`. */
export class Samples {
  #buf: Float64Array;
  #n = 0;

  constructor(initial = 1024) {
    this.#buf = new Float64Array(initial);
  }

  get length(): number {
    return this.#n;
  }

  push(value: number): void {
    if (this.#n === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#n++] = value;
  }

  view(): Float64Array {
    return this.#buf.subarray(0, this.#n);
  }
}

export function concat(parts: Float64Array[]): Float64Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float64Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function pick(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function summarize(samples: Float64Array | number[]): Summary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted.length ? sorted[0] : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    p50: pick(sorted, 0.5),
    p95: pick(sorted, 0.95),
    p99: pick(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
  };
}

/** Rounds for display and JSON: 2 significant decimals under 10, 1 under 1000, else integers. */
export function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  const a = Math.abs(v);
  if (a < 10) return Math.round(v * 100) / 100;
  if (a < 1000) return Math.round(v * 10) / 10;
  return Math.round(v);
}

/** The window of due times whose median latency is the highest. */
export interface WorstWindow {
  /** Its start, in ms after the first due time. */
  atMs: number;
  p50: number;
  count: number;
}

/**
 * Cuts the samples into windows of `windowMs` by when each was due (`due[i]`, ms; `latency[i]`
 * its latency) and returns the window with the highest median, among windows of at least
 * `minCount` samples. A p99 says how bad the tail is; this says whether it is spread over the run
 * or one stall, and when it came.
 */
export function worstWindow(
  due: ArrayLike<number>,
  latency: ArrayLike<number>,
  windowMs: number,
  minCount = 10,
): WorstWindow | undefined {
  if (due.length === 0) return undefined;
  let first = Number.POSITIVE_INFINITY;
  for (let i = 0; i < due.length; i++) first = Math.min(first, due[i]);
  const windows = new Map<number, number[]>();
  for (let i = 0; i < due.length; i++) {
    const k = Math.floor((due[i] - first) / windowMs);
    const w = windows.get(k);
    if (w) w.push(latency[i]);
    else windows.set(k, [latency[i]]);
  }
  let worst: WorstWindow | undefined;
  for (const [k, w] of windows) {
    if (w.length < minCount) continue;
    const p50 = pick(Float64Array.from(w).sort(), 0.5);
    if (!worst || p50 > worst.p50) worst = { atMs: k * windowMs, p50, count: w.length };
  }
  return worst;
}
