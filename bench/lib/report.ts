// The human table and the final single JSON line of a run. Figures are flat
// `name -> number | string | boolean` maps, one per target; goals compare a figure with the
// issue's target.
import { round } from './stats.ts';

export type Figure = number | string | boolean | null;
export type Figures = Record<string, Figure>;

export interface Goal {
  /** What is compared, e.g. "delivered events/s". */
  name: string;
  /**
   * Whose figure: a target's (`taskwire`, `peer`, `bullmq-postgres`...), or `ratio`: then
   * `figure` is a key of the run's ratios (a figure name: taskwire/peer of that figure; or
   * `taskwire/<target>`: of the scenario's headline figure).
   */
  target: string;
  /** For a ratio goal: the other target it needs (default `peer`). */
  vs?: string;
  figure: string;
  op: '>=' | '<=' | '==';
  value: number;
}

export interface GoalResult {
  name: string;
  measured: number | null;
  wanted: string;
  met: boolean | null;
}

export interface RunReport {
  scenario: string;
  params: Record<string, unknown>;
  /** One set of figures per target, in the order measured. */
  figures: Partial<Record<string, Figures>>;
  /** `--variant`: taskwire's figures per variant (the first is the base of the ratios). */
  variants?: Record<string, Figures>;
  /**
   * taskwire / peer for the figures both have (higher is better unless noted by the name), and
   * `taskwire/<target>` of the headline figure for every other target measured.
   */
  ratios?: Record<string, number>;
  goals: GoalResult[];
  notes: string[];
  /** Top self-time functions of the server's CPU profiles (--profile / --cpu-prof). */
  profiles?: Array<{ target: string; label: string; busyMs: number; top: Array<[string, number]> }>;
}

export function evaluate(
  goals: Goal[],
  figures: RunReport['figures'],
  ratioValues: Record<string, number> = {},
): GoalResult[] {
  return goals.map((g) => {
    const raw = g.target === 'ratio' ? ratioValues[g.figure] : figures[g.target]?.[g.figure];
    const measured = typeof raw === 'number' && Number.isFinite(raw) ? raw : null;
    const met =
      measured === null
        ? null
        : g.op === '>='
          ? measured >= g.value
          : g.op === '<='
            ? measured <= g.value
            : measured === g.value;
    return { name: g.name, measured, wanted: `${g.op} ${g.value}`, met };
  });
}

function ratioOf(x: Figure | undefined, y: Figure | undefined): number | undefined {
  return typeof x === 'number' && typeof y === 'number' && y !== 0 && Number.isFinite(x / y)
    ? round(x / y)
    : undefined;
}

/**
 * taskwire / peer for each of `names` both have (keyed by the figure name, as before), and
 * `taskwire/<target>` of the headline figure (the last of `names`) for every other target.
 */
export function ratios(figures: RunReport['figures'], names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  const a = figures.taskwire;
  if (!a) return out;
  const b = figures.peer;
  if (b)
    for (const name of names) {
      const r = ratioOf(a[name], b[name]);
      if (r !== undefined) out[name] = r;
    }
  const headline = names.at(-1);
  if (!headline) return out;
  for (const [target, other] of Object.entries(figures)) {
    if (target === 'taskwire' || !other) continue;
    const r = ratioOf(a[headline], other[headline]);
    if (r !== undefined) out[`taskwire/${target}`] = r;
  }
  return out;
}

function show(v: Figure | undefined): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'number') return Number.isFinite(v) ? String(round(v)) : String(v);
  return String(v);
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])));
      const text = line.join('  ');
      return i === 0 ? `${text}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : text;
    })
    .join('\n');
}

export function printReport(report: RunReport, out: (line: string) => void): void {
  if (report.variants) {
    printVariants(report, report.variants, out);
    return;
  }
  const targets = Object.keys(report.figures).filter((t) => report.figures[t]);
  const names = [...new Set(targets.flatMap((t) => Object.keys(report.figures[t] ?? {})))];
  // One ratio column per other target, when taskwire was measured too: taskwire / that target.
  const others = targets.includes('taskwire') ? targets.filter((t) => t !== 'taskwire') : [];
  const header = ['figure', ...targets, ...others.map((t) => `taskwire/${t}`)];
  const rows = [header];
  for (const name of names) {
    const row = [name, ...targets.map((t) => show(report.figures[t]?.[name]))];
    for (const t of others) {
      const r = ratioOf(report.figures.taskwire?.[name], report.figures[t]?.[name]);
      row.push(r !== undefined ? `${r}x` : '');
    }
    rows.push(row);
  }
  out('');
  out(`== ${report.scenario}  ${JSON.stringify(report.params)}`);
  out(table(rows));
  if (report.goals.length > 0) {
    out('');
    const goalRows = [['goal', 'measured', 'wanted', 'met']];
    for (const g of report.goals)
      goalRows.push([g.name, show(g.measured), g.wanted, g.met === null ? 'n/a' : g.met ? 'yes' : 'NO']);
    out(table(goalRows));
  }
  for (const note of report.notes) out(`note: ${note}`);
  out('');
}

/** `--variant` runs: one column per variant, then each later variant's ratio to the first. */
function printVariants(
  report: RunReport,
  variants: Record<string, Figures>,
  out: (line: string) => void,
): void {
  const names = Object.keys(variants);
  const figures = [...new Set(names.flatMap((n) => Object.keys(variants[n])))];
  const base = variants[names[0]];
  const rows = [['figure', ...names, ...names.slice(1).map((n) => `${n}/${names[0]}`)]];
  for (const f of figures) {
    const row = [f, ...names.map((n) => show(variants[n][f]))];
    for (const n of names.slice(1)) {
      const x = variants[n][f];
      const y = base?.[f];
      row.push(typeof x === 'number' && typeof y === 'number' && y !== 0 ? `${round(x / y)}x` : '');
    }
    rows.push(row);
  }
  out('');
  out(`== ${report.scenario}  ${JSON.stringify(report.params)}`);
  out(table(rows));
  for (const note of report.notes) out(`note: ${note}`);
  out('');
}

/** The last line of every run: one JSON object a script can parse. */
export function jsonLine(report: RunReport): string {
  return JSON.stringify(report, (_k, v) => (typeof v === 'number' ? round(v) : v));
}
