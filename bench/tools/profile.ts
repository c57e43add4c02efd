// Summarises a V8 .cpuprofile (from `node --cpu-prof` or the benchmark's --profile): the top
// functions by self time, and self time by area (a src/ part, a node_modules package, node's
// internals, GC, idle); or, with --callers <function>, the call paths its self time comes from.
// Usage: node bench/tools/profile.ts <file.cpuprofile> [--top 25] [--callers writev]
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  where: string;
  selfMs: number;
  /** Share of busy (non-idle) time, %. */
  pct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  idleMs: number;
  busyMs: number;
  top: ProfileRow[];
  areas: Array<{ area: string; selfMs: number; pct: number }>;
}

const ROOT = path.resolve(import.meta.dirname, '../..');

function shortUrl(url: string): string {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(ROOT)) u = u.slice(ROOT.length + 1);
  const nm = u.lastIndexOf('node_modules/');
  if (nm !== -1) u = u.slice(nm);
  return u;
}

function areaOf(frame: CallFrame): string {
  const name = frame.functionName;
  if (!frame.url) {
    if (name.startsWith('(')) return name;
    return '(native/builtin)';
  }
  const u = shortUrl(frame.url);
  if (u.startsWith('node:')) return 'node: internals';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm) return nm[1];
  const part = /^(src|bench)\/([^/]+)/.exec(u);
  if (part) return `${part[1]}/${part[2]}`;
  return u;
}

export function summarizeProfile(file: string, topN = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    // The delta after a sample is the time spent where that sample was taken.
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    if (dt > 0) selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + dt);
  }
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const areas = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const f = node.callFrame;
    totalUs += us;
    if (f.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const name = f.functionName || '(anonymous)';
    const key = `${name}@${where}`;
    const row = fn.get(key) ?? { name, where, us: 0 };
    row.us += us;
    fn.set(key, row);
    const area = areaOf(f);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => (busyUs > 0 ? (us / busyUs) * 100 : 0);
  return {
    file,
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: busyUs / 1000,
    top: [...fn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((r) => ({ name: r.name, where: r.where, selfMs: r.us / 1000, pct: pct(r.us) })),
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([area, us]) => ({ area, selfMs: us / 1000, pct: pct(us) })),
  };
}

/** Where the self time of function `name` comes from: its call paths (depth frames up), heaviest first. */
export function callersOf(
  file: string,
  name: string,
  depth = 6,
  top = 8,
): Array<{ path: string; selfMs: number }> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  for (let i = 0; i + 1 < profile.samples.length; i++)
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + profile.timeDeltas[i + 1]);
  const paths = new Map<string, number>();
  for (const [id, us] of selfUs) {
    if (byId.get(id)?.callFrame.functionName !== name) continue;
    const chain: string[] = [];
    for (let p = parent.get(id); p !== undefined && chain.length < depth; p = parent.get(p)) {
      const f = byId.get(p)!.callFrame;
      chain.push(`${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`);
    }
    const key = chain.join(' <- ');
    paths.set(key, (paths.get(key) ?? 0) + us);
  }
  return [...paths.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([path, us]) => ({ path, selfMs: us / 1000 }));
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [
    `profile ${path.relative(process.cwd(), s.file)}: ${s.totalMs.toFixed(0)} ms sampled, ` +
      `${s.busyMs.toFixed(0)} ms busy (${((s.busyMs / Math.max(1, s.totalMs)) * 100).toFixed(0)}%)`,
    '  self time by area (% of busy):',
    ...s.areas.map(
      (a) => `    ${a.pct.toFixed(1).padStart(5)}%  ${a.selfMs.toFixed(0).padStart(7)} ms  ${a.area}`,
    ),
    '  top functions by self time (% of busy):',
    ...s.top.map(
      (r) =>
        `    ${r.pct.toFixed(1).padStart(5)}%  ${r.selfMs.toFixed(0).padStart(7)} ms  ${r.name}  ${r.where}`,
    ),
  ];
  return lines.join('\n');
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  const topAt = args.indexOf('--top');
  const top = topAt !== -1 ? Number(args[topAt + 1]) : 25;
  const callersAt = args.indexOf('--callers');
  if (!file) {
    console.error('usage: node bench/tools/profile.ts <file.cpuprofile> [--top 25] [--callers <function>]');
    process.exit(2);
  }
  if (callersAt !== -1) {
    for (const c of callersOf(file, args[callersAt + 1]))
      console.log(`${c.selfMs.toFixed(0).padStart(7)} ms  ${c.path}`);
  } else {
    console.log(formatSummary(summarizeProfile(file, top)));
  }
}
