// The benchmark runner: `npm run bench -- <scenario> [--flags]`. Starts the server(s) under test
// and the load generator in their own processes, runs the scenario against taskwire, the
// Socket.IO + BullMQ peer, or both, prints a human table and, last, one JSON line.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bool, type FlagSpec, helpText, int, list, parseFlags, str, UsageError } from './lib/args.ts';
import { machineBusyPct } from './lib/procs.ts';
import { evaluate, jsonLine, printReport, type RunReport, ratios, table } from './lib/report.ts';
import { RESULTS_DIR, TARGET_NAMES, type TargetName } from './lib/targets.ts';
import { actors } from './scenarios/actors.ts';
import { bus } from './scenarios/bus.ts';
import type { Ctx, Scenario } from './scenarios/common.ts';
import { fanout } from './scenarios/fanout.ts';
import { idle } from './scenarios/idle.ts';
import { sockets } from './scenarios/sockets.ts';
import { streams } from './scenarios/streams.ts';
import { throughput } from './scenarios/throughput.ts';

/** Other work above this share of one core during a window makes the run "disturbed". */
const DISTURBED_PCT = 25;

const SCENARIOS: Record<string, Scenario<any>> = {
  throughput,
  fanout,
  sockets,
  actors,
  bus,
  streams,
  idle,
};

const COMMON = {
  target: str(
    'taskwire',
    'what to measure, in turn: taskwire, peer (BullMQ on Redis), bullmq-postgres, bullmq-redis, ' +
      'graphile-ceiling (throughput only), a comma list of these, both (taskwire,peer) or all ' +
      "(the scenario's full set)",
  ),
  genProcs: int(
    0,
    "load generator processes (0: the scenario's own number: 2 for fanout, one per core, else 1; " +
      'sockets and fanout add more when open files require)',
  ),
  genNice: int(0, 'niceness of the generator processes (e.g. 10: the server under test wins CPU contention)'),
  profile: bool(false, "CPU-profile the server over the measured window (V8's sampler, as --cpu-prof)"),
  cpuProf: bool(false, 'run the server under node --cpu-prof (whole process, written at exit)'),
  serverEnv: list('KEY=VALUE for the server under test (repeatable), e.g. TASKWIRE_DB_POOL_SIZE=20'),
  quietBelow: int(
    25,
    'before each target, wait (up to 3 min) until the machine is less busy than this % (0: no wait)',
  ),
  retryDisturbed: int(
    2,
    'measure a target again (up to this many times) when other work used > 25% of a core meanwhile',
  ),
  variant: list(
    'measure taskwire once per variant, in one run: NAME=ROOT[,KEY=VALUE...] (a checkout, e.g. a `git ' +
      'archive` of main, and server env); ratios are to the first variant (repeatable)',
  ),
  rounds: int(1, 'with --variant: measure the variants in turn this many times; the median run is kept'),
  help: bool(false, 'this help'),
} satisfies FlagSpec;

interface Variant {
  name: string;
  root: string;
  env: Record<string, string>;
}

function parseVariant(spec: string): Variant {
  const eq = spec.indexOf('=');
  if (eq < 1) throw new UsageError(`--variant wants NAME=ROOT[,KEY=VALUE...], got ${spec}`);
  const [root, ...pairs] = spec.slice(eq + 1).split(',');
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new UsageError(`--variant ${spec}: ${pair} is not KEY=VALUE`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return { name: spec.slice(0, eq), root: path.resolve(root || '.'), env };
}

/**
 * `--variant`: the same scenario against taskwire several ways (checkouts, settings), in turns,
 * so that before/after figures come from one run on the same machine state. Prints one column per
 * variant and each one's ratio to the first.
 */
async function runVariants(
  scenario: Scenario<any>,
  flags: Record<string, any>,
  ctx: Ctx,
  variants: Variant[],
  report: RunReport,
): Promise<boolean> {
  const key = scenario.ratioNames.at(-1) ?? '';
  const runs = new Map<string, RunReport['figures']['taskwire'][]>();
  const baseEnv = ctx.serverEnv;
  let failed = false;
  for (let round = 0; round < Math.max(1, flags.rounds as number); round++) {
    for (const v of variants) {
      await waitQuiet(flags.quietBelow as number, ctx.log);
      ctx.log(`variant ${v.name} (round ${round + 1}): ${v.root} ${JSON.stringify(v.env)}`);
      try {
        // A run disturbed by other work is measured again (--retry-disturbed); the least
        // disturbed one is kept.
        let best: Awaited<ReturnType<typeof scenario.measure>> | undefined;
        for (let attempt = 0; attempt <= (flags.retryDisturbed as number); attempt++) {
          if (attempt > 0) await waitQuiet(flags.quietBelow as number, ctx.log);
          const measured = await scenario.measure('taskwire', flags, {
            ...ctx,
            taskwireRoot: v.root,
            serverEnv: { ...baseEnv, ...v.env },
          });
          const others = Number(measured.figures.others_cpu_pct ?? 0);
          if (!best || others < Number(best.figures.others_cpu_pct ?? 0)) best = measured;
          if (others <= DISTURBED_PCT) break;
          ctx.log(
            `${v.name}: other work used ${others.toFixed(0)}% of a core during the window; measuring again`,
          );
        }
        if (!best) continue;
        const others = Number(best.figures.others_cpu_pct ?? 0);
        if (others > DISTURBED_PCT)
          best.notes.push(
            `DISTURBED: other processes used ${others.toFixed(0)}% of a core during the window`,
          );
        runs.set(v.name, [...(runs.get(v.name) ?? []), best.figures]);
        report.notes.push(...best.notes.map((n) => `${v.name} (round ${round + 1}): ${n}`));
      } catch (err) {
        failed = true;
        report.notes.push(`${v.name} run failed: ${err instanceof Error ? err.message.split('\n')[0] : err}`);
      }
    }
  }
  const variantFigures: NonNullable<RunReport['variants']> = {};
  for (const v of variants) {
    const all = (runs.get(v.name) ?? []).filter((f): f is NonNullable<typeof f> => Boolean(f));
    if (all.length === 0) continue;
    const sorted = [...all].sort((a, b) => Number(a[key] ?? 0) - Number(b[key] ?? 0));
    const median = sorted[Math.floor((sorted.length - 1) / 2)];
    variantFigures[v.name] = { ...median, [`${key}_all_rounds`]: all.map((f) => f[key]).join(' ') };
  }
  report.variants = variantFigures;
  return failed;
}

/** Waits until other work on the machine has calmed down; returns the last busy % seen. */
async function waitQuiet(belowPct: number, log: (line: string) => void): Promise<number> {
  const deadline = Date.now() + 180_000;
  let busy = await machineBusyPct(1000);
  if (belowPct <= 0) return busy;
  let told = false;
  while (busy >= belowPct && Date.now() < deadline) {
    if (!told) log(`the machine is ${busy.toFixed(0)}% busy with other work; waiting for it to calm down`);
    told = true;
    busy = await machineBusyPct(2000);
  }
  return busy;
}

/** `--target`: a name, a comma list, `both` or `all` (the scenario's own set). */
function parseTargets(spec: string, scenario: Scenario<any>): TargetName[] {
  const out: TargetName[] = [];
  for (const raw of spec.split(',')) {
    const name = raw.trim();
    const names =
      name === 'both'
        ? (['taskwire', 'peer'] as const)
        : name === 'all'
          ? (scenario.allTargets ?? (['taskwire', 'peer'] as const))
          : [name as TargetName];
    for (const n of names) {
      if (!TARGET_NAMES.includes(n))
        throw new UsageError(`--target: unknown target ${n}; one of ${TARGET_NAMES.join(', ')}, both, all`);
      if (n === 'graphile-ceiling' && !scenario.allTargets?.includes(n))
        throw new UsageError(`--target graphile-ceiling: only the throughput scenario measures it`);
      if (!out.includes(n)) out.push(n);
    }
  }
  return out;
}

function usage(): string {
  const lines = [
    'usage: npm run bench -- <scenario> [--flags]',
    '',
    'scenarios:',
    ...Object.values(SCENARIOS).map((s) => `  ${s.name.padEnd(12)} ${s.summary}`),
    '',
    'flags of every scenario:',
    helpText(COMMON),
  ];
  for (const s of Object.values(SCENARIOS)) lines.push('', `${s.name}:`, helpText(s.flags));
  return lines.join('\n');
}

function stamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const scenario = SCENARIOS[name];
  if (!scenario)
    throw new UsageError(`unknown scenario ${name}; one of ${Object.keys(SCENARIOS).join(', ')}`);
  const spec = { ...COMMON, ...scenario.flags };
  const flags = parseFlags(spec, rest) as Record<string, any>;
  if (flags.help) {
    console.log(`${scenario.name}: ${scenario.summary}\n\n${helpText(spec)}`);
    return 0;
  }
  const serverEnv: Record<string, string> = {};
  for (const pair of flags.serverEnv as string[]) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--server-env wants KEY=VALUE, got ${pair}`);
    serverEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const runId = `${scenario.name}-${stamp()}-${randomBytes(2).toString('hex')}`;
  const ctx: Ctx = {
    runId,
    log: (line) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`),
    genProcs: Math.max(0, flags.genProcs as number),
    genNice: Math.min(19, Math.max(0, flags.genNice as number)),
    serverEnv,
    profile: flags.profile as boolean,
    cpuProf: flags.cpuProf as boolean,
    profiles: [],
  };
  const targets = parseTargets(flags.target as string, scenario);
  const params: Record<string, unknown> = {};
  for (const key of Object.keys(scenario.flags)) params[key] = flags[key];
  params.target = flags.target;
  if (Object.keys(serverEnv).length > 0) params.serverEnv = serverEnv;

  const report: RunReport = { scenario: scenario.name, params, figures: {}, goals: [], notes: [] };
  let failed = false;
  const variants = (flags.variant as string[]).map(parseVariant);
  if (variants.length > 0) {
    if (targets.join() !== 'taskwire') throw new UsageError('--variant measures taskwire only');
    params.variants = variants.map((v) => `${v.name}=${v.root} ${JSON.stringify(v.env)}`);
    params.rounds = flags.rounds;
    failed = await runVariants(scenario, flags, ctx, variants, report);
    targets.length = 0;
  }
  for (const target of targets) {
    let best: { figures: RunReport['figures']['taskwire']; notes: string[]; others: number } | undefined;
    for (let attempt = 0; attempt <= (flags.retryDisturbed as number); attempt++) {
      const busy = await waitQuiet(flags.quietBelow as number, ctx.log);
      try {
        const measured = await scenario.measure(target, flags, ctx);
        const others = Number(measured.figures.others_cpu_pct ?? 0);
        const notes = [
          ...measured.notes,
          `${target}: machine ${busy.toFixed(0)}% busy with other work just before the run`,
        ];
        if (!best || others < best.others) best = { figures: measured.figures, notes, others };
        if (others <= DISTURBED_PCT) break;
        ctx.log(
          `${target}: other work used ${others.toFixed(0)}% of a core during the window; measuring again`,
        );
      } catch (err) {
        failed = true;
        const message = err instanceof Error ? err.message : String(err);
        report.notes.push(`${target} run failed: ${message.split('\n')[0]}`);
        ctx.log(`${target} run failed: ${err instanceof Error ? err.stack : message}`);
        break;
      }
    }
    if (best) {
      report.figures[target] = best.figures;
      report.notes.push(...best.notes);
      if (best.others > DISTURBED_PCT)
        report.notes.push(
          `${target}: DISTURBED: other processes used ${best.others.toFixed(0)}% of a core during the window`,
        );
    }
  }
  report.ratios = ratios(report.figures, scenario.ratioNames);
  report.goals = evaluate(
    scenario
      .goals(flags)
      .filter((g) =>
        g.target === 'ratio'
          ? targets.includes('taskwire') && targets.includes((g.vs ?? 'peer') as TargetName)
          : targets.includes(g.target as TargetName),
      ),
    report.figures,
    report.ratios,
  );
  report.notes.push(
    `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`,
  );
  if (ctx.profiles.length > 0) {
    report.profiles = ctx.profiles.map((p) => ({
      target: p.target,
      label: p.label,
      busyMs: p.summary.busyMs,
      top: p.summary.top.slice(0, 10).map((r) => [`${r.name} ${r.where}`, Math.round(r.pct * 10) / 10]),
    }));
  }
  printReport(report, (line) => console.log(line));
  for (const [target, figures] of Object.entries(report.figures)) {
    const rows = figures && scenario.table?.(figures);
    if (rows && rows.length > 1) console.log(`${target}:\n${table(rows)}\n`);
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${runId}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`(saved ${path.relative(process.cwd(), file)})`);
  console.log(jsonLine(report));
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`bench: ${err.message}\n\n${usage()}`);
      process.exit(2);
    }
    console.error(err);
    process.exit(1);
  },
);
