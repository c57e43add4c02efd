// The benchmark suite at tiny size: every scenario runs end to end (server and generator in
// their own processes) against taskwire, and against the Socket.IO + BullMQ peer when the
// machine's Redis answers; the final JSON line parses and carries the scenario's figures. The
// throughput scenario also runs against the peer on PostgreSQL and the graphile-worker ceiling.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { machineAutovacuumOn } from '../../bench/lib/pg.ts';
import { REDIS_HINT, REDIS_URL, redisReachable } from '../../bench/lib/targets.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const AUTOVACUUM_OFF = !(await machineAutovacuumOn());
const results = mkdtempSync(path.join(os.tmpdir(), 'taskwire-bench-smoke-'));
after(() => rmSync(results, { recursive: true, force: true }));

/** The tiny fan-out (2 tasks x 3 subscribers x 5 steps), with the start gate its setup needs. */
function fanoutSize(gate: string): string[] {
  return ['--tasks', '2', '--subs', '3', '--steps', '5', '--interval', '10', '--gate', gate, '--no-db-stats'];
}

// Start gates and --live leave room for a machine loaded by the rest of the suite: every join must be
// done before step 1 (a late join misses events and fails the seq check), seen at 700 ms in a full run.
const SIZES: Record<string, string[]> = {
  throughput: ['--tasks', '20', '--warmup', '5', '--concurrency', '4', '--no-db-stats'],
  // --floor: the bare writer in the run's shape afterwards.
  fanout: [...fanoutSize('2500'), '--floor'],
  sockets: ['--sockets', '20', '--tasks', '2', '--users', '2', '--hold', '300', '--settle', '200'],
  actors: ['--tasks', '10', '--live', '4000', '--linger', '200', '--warmup', '3'],
  // Three transports, one windowed run each (the fixed-rate run is the same code with a timer).
  bus: ['--duration', '300', '--warmup', '100', '--rate', '0', '--window', '500', '--pair-retries', '0'],
  // Two taskwire processes: the jobs on one, the subscribers on the other (one bus: a few seconds).
  'fanout --nodes 2': ['--bus', 'postgres', ...fanoutSize('3000')],
  // Streamed output, every socket cut mid-stream and resumed from last + 1.
  streams: [
    '--tasks',
    '3',
    '--tokens',
    '60',
    '--interval',
    '10',
    '--cut-at',
    '300',
    '--gate',
    '2000',
    '--no-db-stats',
  ],
  idle: ['--sockets', '20', '--tasks', '2', '--settle', '200'],
  // The peak of a closed loop first, then the open loop at half of it, on the same server.
  'throughput --peak-fraction 0.5': [
    '--peak-tasks',
    '30',
    '--peak-concurrency',
    '4',
    '--tasks',
    '20',
    '--warmup',
    '5',
    '--concurrency',
    '8',
    '--no-db-stats',
  ],
};

/** Cases that compare something other than taskwire with the peer, or measure taskwire alone. */
const NO_PEER = new Set(['bus', 'fanout --nodes 2', 'streams', 'idle', 'throughput --peak-fraction 0.5']);

/** Figures each scenario must report, with a check of their value. */
const EXPECT: Record<string, Record<string, (v: unknown) => boolean>> = {
  throughput: {
    completed_per_s: (v) => typeof v === 'number' && v > 0,
    completed_p99_ms: (v) => typeof v === 'number' && v >= 0,
    completed_worst_window_at_s: (v) => typeof v === 'number' && v >= 0,
    // This machine's PostgreSQL runs without autovacuum (CI): the bench vacuums between the phases.
    vacuumed_after_warmup: (v) => v === (AUTOVACUUM_OFF ? 1 : 0),
    failures: (v) => v === 0,
    generator_cpu_pct: (v) => typeof v === 'number',
  },
  fanout: {
    delivered_per_s: (v) => typeof v === 'number' && v > 0,
    latency_p99_ms: (v) => typeof v === 'number',
    seq_errors: (v) => v === 0,
    // Each subscriber: 5 progress events and completed, and started when it joined before the claim.
    events: (v) => typeof v === 'number' && v >= 2 * 3 * 6 && v <= 2 * 3 * 7,
    server_us_per_delivery: (v) => typeof v === 'number' && v >= 0, // a 50 ms window may read 0 (/proc counts CPU in 10 ms ticks)
    generator_us_per_delivery: (v) => typeof v === 'number' && v > 0,
    generator_loop_delay_p99_ms: (v) => typeof v === 'number',
    // One generator process per core unless --gen-procs says otherwise (one alone queues the frames).
    generators: (v) => v === 2,
    floor_us_per_write: (v) => typeof v === 'number' && v > 0,
    floor_sys_us_per_write: (v) => typeof v === 'number',
    floor_latency_p99_ms: (v) => typeof v === 'number' && v >= 0,
  },
  sockets: {
    joined: (v) => v === 20,
    failures: (v) => v === 0,
    rss_per_socket_kb: (v) => typeof v === 'number',
    join_p99_ms: (v) => typeof v === 'number',
  },
  actors: {
    live_heap_per_task_kb: (v) => typeof v === 'number',
    live_rss_per_task_kb: (v) => typeof v === 'number',
  },
  'fanout --nodes 2': {
    postgres_delivered_per_s: (v) => typeof v === 'number' && v > 0,
    postgres_seq_errors: (v) => v === 0,
    postgres_events: (v) => typeof v === 'number' && v >= 2 * 3 * 6 && v <= 2 * 3 * 7,
    postgres_bus_events_received_by_b: (v) => typeof v === 'number' && v >= 2 * 6,
    postgres_node_a_cpu_pct: (v) => typeof v === 'number',
  },
  streams: {
    chunks_received: (v) => typeof v === 'number' && v >= 3 * 60,
    missing_chunks: (v) => v === 0,
    duplicate_chunks: (v) => v === 0,
    bad_chunks: (v) => v === 0,
    text_mismatches: (v) => v === 0,
    client_chunks_assembled: (v) => v === 3 * 60,
    rejoins: (v) => v === 3,
    output_statements_per_1000_chunks: (v) => typeof v === 'number' && v > 0,
  },
  idle: {
    ready_rss_mb: (v) => typeof v === 'number' && v > 0,
    joined_rss_mb: (v) => typeof v === 'number' && v > 0,
    ready_heap_used_mb: (v) => typeof v === 'number' && v > 0,
    joined: (v) => v === 20,
    failures: (v) => v === 0,
  },
  'throughput --peak-fraction 0.5': {
    peak_completed_per_s: (v) => typeof v === 'number' && v > 0,
    offered_per_s: (v) => typeof v === 'number' && v > 0,
    completed_per_s: (v) => typeof v === 'number' && v > 0,
    failures: (v) => v === 0,
    pickup_tasks: (v) => v === 20,
  },
  bus: Object.fromEntries(
    ['postgres', 'nats', 'redis'].flatMap((k) => [
      [`${k}_max_delivered_per_s`, (v: unknown) => typeof v === 'number' && v > 0],
      [`${k}_max_p99_ms`, (v: unknown) => typeof v === 'number' && v >= 0],
      [`${k}_max_engine_cpu_us_per_msg`, (v: unknown) => typeof v === 'number' && v >= 0],
      [`${k}_max_lost`, (v: unknown) => v === 0],
    ]),
  ),
};

/** taskwire's own figures, beside the ones every throughput target reports. */
const TASKWIRE_EXPECT: Record<string, typeof EXPECT.throughput> = {
  throughput: {
    ...EXPECT.throughput,
    // Pickup is read from the task rows of the measured phase only (20 tasks), not the warm-up's 5.
    pickup_tasks: (v) => v === 20,
    pickup_max_ms: (v) => typeof v === 'number' && v >= 0,
  },
};

/** The Socket.IO + BullMQ peer keeps its queue in Redis: no database to vacuum. */
const PEER_EXPECT: Record<string, typeof EXPECT.throughput> = {
  throughput: { ...EXPECT.throughput, vacuumed_after_warmup: (v) => v === 0 },
};

/** Other targets of a scenario, each with the figures it must report. */
const EXTRA: Record<string, Array<{ target: string; args: string[]; expect: typeof EXPECT.throughput }>> = {
  throughput: [
    {
      // BullMQ's QueueEvents on PostgreSQL can miss a completion (the issue reports ~5 %): such a
      // task is a failure the client never saw end, and nothing else may fail.
      target: 'bullmq-postgres',
      args: ['--lane-release', '1s'],
      expect: {
        ...EXPECT.throughput,
        failures: (v) => typeof v === 'number',
        missed_completions: (v) => typeof v === 'number',
        queue_events_missed: (v) => typeof v === 'number',
        postgres_cpu_us_per_task: (v) => typeof v === 'number' && v > 0,
      },
    },
    {
      // 2,000 no-op jobs (a few tenths of a second): 20 cost ~1.5 ms of CPU, under /proc's 10 ms tick,
      // and read as 0 (seen in a full run).
      target: 'graphile-ceiling',
      args: ['--ceiling-jobs', '2000'],
      expect: {
        completed_per_s: (v) => typeof v === 'number' && v > 0,
        failures: (v) => v === 0,
        server_cpu_us_per_task: (v) => typeof v === 'number' && v > 0,
      },
    },
  ],
};

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/run.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, BENCH_RESULTS_DIR: results },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function check(
  name: string,
  target: string,
  extraArgs: string[] = [],
  expect: Record<string, (v: unknown) => boolean> = EXPECT[name],
): Promise<void> {
  // A case is a scenario, or a scenario and some of its flags (`fanout --nodes 2`).
  const [scenario, ...caseFlags] = name.split(' ');
  // No waiting for a quiet machine and no re-runs: the other smoke runs are the "other work".
  const { code, stdout, stderr } = await runBench([
    scenario,
    ...caseFlags,
    '--target',
    target,
    '--quiet-below',
    '0',
    '--retry-disturbed',
    '0',
    ...SIZES[name],
    ...extraArgs,
  ]);
  const lines = stdout.trim().split('\n');
  const last = lines[lines.length - 1];
  assert.equal(code, 0, `bench ${scenario} --target ${target} exited ${code}\n${stdout}\n${stderr}`);
  const report = JSON.parse(last);
  assert.equal(report.scenario, scenario);
  const figures = report.figures?.[target];
  assert.ok(figures, `no figures for ${target} in ${last}`);
  for (const [figure, ok] of Object.entries(expect)) {
    assert.ok(figure in figures, `${name}/${target}: figure ${figure} missing`);
    assert.ok(
      ok(figures[figure]),
      `${name}/${target}: figure ${figure} = ${JSON.stringify(figures[figure])}`,
    );
  }
  assert.ok(stdout.includes(`== ${scenario}`), 'the human table is printed before the JSON line');
}

const redisUp = await redisReachable();
const peerSkip = redisUp
  ? false
  : `Redis is not reachable at ${REDIS_URL}, so the peer is skipped (${REDIS_HINT})`;

describe('bench smoke (tiny sizes)', { concurrency: 4 }, () => {
  for (const scenario of Object.keys(SIZES)) {
    test(`${scenario} runs against taskwire and prints its figures`, () =>
      check(scenario, 'taskwire', [], TASKWIRE_EXPECT[scenario] ?? EXPECT[scenario]));
    if (NO_PEER.has(scenario)) continue;
    test(`${scenario} runs against the Socket.IO + BullMQ peer`, { skip: peerSkip }, () =>
      check(scenario, 'peer', [], PEER_EXPECT[scenario] ?? EXPECT[scenario]),
    );
    for (const extra of EXTRA[scenario] ?? []) {
      test(`${scenario} runs against ${extra.target}`, () =>
        check(scenario, extra.target, extra.args, extra.expect));
    }
  }
});
