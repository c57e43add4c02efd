// streams: T tasks each stream K output chunks at one per I ms (`bench_stream`: `ctx.output()`
// behind a start gate), one subscriber socket per task joined with `output_from: 0`. Figures:
// delivered chunks/s, chunk latency (the chunk's text carries its index and the producer's
// Date.now()), missing / duplicate / out-of-order chunks, the assembled text against the stored
// output, and what persisting the output costs PostgreSQL (rows, statements, commits per 1,000
// chunks). `--cut-at`: every socket is cut mid-stream and rejoins with `output_from` = last + 1.
import type { CollectResult, CutResult, SocketPlan, VerifyResult } from '../generator/main.ts';
import { bool, int, ms, str } from '../lib/args.ts';
import { sleep } from '../lib/procs.ts';
import type { Figures } from '../lib/report.ts';
import { createTasks } from '../lib/targets.ts';
import {
  connectAll,
  cpuWindow,
  dbWritesAfterRun,
  defineScenario,
  generatorCount,
  MB,
  mergeCounts,
  profiled,
  receiveTotals,
  sum,
  topErrors,
  withGenerators,
  withTarget,
} from './common.ts';

const METRICS = [
  'taskwire_output_chunks_total',
  'taskwire_output_rows_total',
  'taskwire_output_flush_seconds_count',
];

export const streams = defineScenario({
  name: 'streams',
  summary:
    'T tasks x K output chunks at I ms, one socket each (output_from); chunks/s, latency, exactness, rows',
  flags: {
    tasks: int(200, 'streaming tasks (T), one subscriber socket each'),
    tokens: int(2000, 'output chunks per task (K)'),
    interval: ms(20, 'time between two chunks of a task (I)'),
    progressEvery: int(0, 'a progress update every this many chunks (0: output only)'),
    cutAt: ms(0, 'cut every socket this long after the first chunk and rejoin with output_from (0: never)'),
    gate: ms(0, 'time between creating the tasks and the first chunk (0: sized from the task count)'),
    connectConcurrency: int(100, 'sockets opened and joined at once'),
    genClient: str<'lean' | 'ws'>(
      'lean',
      "the generator's Phoenix client: lean (a net socket read with onread, ws's Sender for its own frames) or ws",
      ['lean', 'ws'],
    ),
    dbStats: bool(true, 'wait for PostgreSQL statistics to settle and count rows and commits (adds ~11 s)'),
  },
  goals: () => [
    { name: 'no chunk missing', target: 'taskwire', figure: 'missing_chunks', op: '==', value: 0 },
    { name: 'no chunk twice', target: 'taskwire', figure: 'duplicate_chunks', op: '==', value: 0 },
    {
      name: 'every chunk names its own index (in order)',
      target: 'taskwire',
      figure: 'bad_chunks',
      op: '==',
      value: 0,
    },
    {
      name: 'assembled text == stored output, every task',
      target: 'taskwire',
      figure: 'text_mismatches',
      op: '==',
      value: 0,
    },
  ],
  ratioNames: ['delivered_chunks_per_s'],
  async measure(targetName, f, ctx) {
    if (targetName !== 'taskwire') throw new Error('streams measures taskwire only');
    const env: Record<string, string> = {};
    if (f.tasks > 100) env.TASKWIRE_CONCURRENCY = String(f.tasks);
    const gens = generatorCount(ctx);
    return withTarget(targetName, ctx, env, (target) =>
      withGenerators(gens, ctx, async (children) => {
        const token = await target.token('bench-streams');
        const gate = f.gate > 0 ? f.gate : Math.round(3000 + f.tasks * 10);
        const before = f.dbStats ? await target.dbWrites() : undefined;
        const [m0] = await target.metricsPerProcess(METRICS, 1);
        const startAt = Date.now() + gate;
        const ids = await createTasks(
          target,
          token,
          Array.from({ length: f.tasks }, () => ({
            type: 'bench_stream',
            tokens: f.tokens,
            interval_ms: f.interval,
            start_at: startAt,
            progress_every: f.progressEvery,
          })),
        );
        const plans: SocketPlan[] = ids.map((id) => ({ token: 0, tasks: [id], outputFrom: 0 }));
        ctx.log(
          `streams: ${f.tasks} tasks x ${f.tokens} chunks at ${f.interval} ms, one socket each, first chunk in ${gate} ms` +
            (f.cutAt > 0 ? `, every socket cut ${f.cutAt} ms in` : ''),
        );
        const connects = await connectAll(children, target, token, plans, {
          connectConcurrency: f.connectConcurrency,
          lean: f.genClient === 'lean',
          sourceIps: 1,
          timeoutMs: 10 * 60_000,
        });
        const slack = startAt - Date.now();
        ctx.log(
          `streams: joined ${sum(connects.map((c) => c.joins - c.joinFailures))} streams, ` +
            `${slack >= 0 ? `${slack} ms before the first chunk` : `${-slack} ms AFTER the first chunk (raise --gate)`}`,
        );
        if (slack > 0) await sleep(slack);
        await target.probe(false);
        const cpu = cpuWindow(target);
        const timeoutMs = f.tokens * f.interval * 3 + 60_000;
        let cuts: CutResult[] = [];
        const collected = await profiled(target, ctx, 'streams', async () => {
          const collecting = Promise.all(
            children.map((g) => g.request<CollectResult>({ cmd: 'collect', timeoutMs }, timeoutMs + 60_000)),
          );
          if (f.cutAt > 0) {
            await sleep(f.cutAt);
            ctx.log('streams: cutting every socket');
            cuts = await Promise.all(
              children.map((g) =>
                g.request<CutResult>(
                  { cmd: 'cut', concurrency: Math.ceil(f.connectConcurrency / gens) },
                  600_000,
                ),
              ),
            );
            ctx.log(
              `streams: ${sum(cuts.map((c) => c.rejoins))} rejoins in ${Math.max(...cuts.map((c) => c.wallMs)).toFixed(0)} ms`,
            );
          }
          return collecting;
        });
        const window = cpu.stop(sum(collected.map((c) => c.cpuMs)));
        const probe = await target.probe(false);
        const verified = await Promise.all(
          children.map((g) =>
            g.request<VerifyResult>({ cmd: 'verify', httpUrl: target.httpUrl, token }, 600_000),
          ),
        );
        const [m1] = await target.metricsPerProcess(METRICS, 1);
        await Promise.all(children.map((g) => g.request({ cmd: 'close' }, 120_000)));
        const after = await dbWritesAfterRun(target, before);

        const chunks = sum(collected.map((c) => c.outputChunks));
        const totals = receiveTotals(collected, connects);
        const { events, spanMs, latency: lat, join, subs, complete, byName } = totals;
        const missing = sum(collected.map((c) => c.outputMissing));
        const dups = sum(collected.map((c) => c.outputDups));
        const bad = sum(collected.map((c) => c.outputBad));
        const joinFailures = totals.joinFailures + totals.connectFailures;
        const seqErrors = sum(collected.map((c) => c.missing + c.dups)) + (subs - complete) + joinFailures;
        const mismatched = sum(verified.map((v) => v.mismatched));
        const notes: string[] = [];
        if (slack < 0) notes.push(`joins finished ${-slack} ms after the first chunk; raise --gate`);
        const errors = mergeCounts(connects.map((c) => c.errors));
        if (Object.keys(errors).length > 0) notes.push(`errors: ${topErrors(errors)}`);
        if (collected.some((c) => c.timedOut)) notes.push('some streams never saw the end (timeout)');
        const sample = verified.find((v) => v.sample)?.sample;
        if (sample) notes.push(`text mismatch, e.g. ${sample}`);
        const delta = (name: string) => (m1?.[name] ?? 0) - (m0?.[name] ?? 0);
        const storedChunks = delta('taskwire_output_chunks_total');
        const per1000 = (n: number) => (storedChunks > 0 ? (n / storedChunks) * 1000 : Number.NaN);
        const cutFigures: Figures =
          f.cutAt > 0
            ? {
                sockets_cut: sum(cuts.map((c) => c.cut)),
                rejoins: sum(cuts.map((c) => c.rejoins)),
                rejoin_failures: sum(cuts.map((c) => c.rejoinFailures)),
                rejoin_wall_ms: Math.max(...cuts.map((c) => c.wallMs)),
              }
            : {};
        return {
          notes,
          figures: {
            streams: subs,
            offered_chunks_per_s: (f.tasks * 1000) / f.interval,
            delivered_chunks_per_s: spanMs > 0 ? (chunks / spanMs) * 1000 : Number.NaN,
            chunks_received: chunks,
            chunks_expected: f.tasks * f.tokens,
            events,
            progress_events: byName.progress ?? 0,
            latency_p50_ms: lat.p50,
            latency_p95_ms: lat.p95,
            latency_p99_ms: lat.p99,
            latency_max_ms: lat.max,
            missing_chunks: missing,
            duplicate_chunks: dups,
            bad_chunks: bad,
            text_mismatches: mismatched,
            client_chunks_assembled: sum(verified.map((v) => v.clientChunks)),
            stored_chunks_read: sum(verified.map((v) => v.storedChunks)),
            streams_complete: complete,
            seq_errors: seqErrors,
            join_p50_ms: join.p50,
            join_p99_ms: join.p99,
            join_failures: joinFailures,
            unexpected_closes: sum(collected.map((c) => c.stats.unexpectedCloses)),
            ...cutFigures,
            ...window,
            server_elu: probe.elu,
            server_rss_mb: probe.rss / MB,
            output_chunks_written: storedChunks,
            output_rows_written: delta('taskwire_output_rows_total'),
            output_flush_statements: delta('taskwire_output_flush_seconds_count'),
            output_rows_per_1000_chunks: per1000(delta('taskwire_output_rows_total')),
            output_statements_per_1000_chunks: per1000(delta('taskwire_output_flush_seconds_count')),
            ...(before && after
              ? {
                  task_output_rows_inserted: after.outputRows - before.outputRows,
                  commits: after.commits - before.commits,
                  commits_per_1000_chunks: per1000(after.commits - before.commits),
                  taskwire_row_writes: after.taskwire - before.taskwire,
                  taskwire_row_writes_per_1000_chunks: per1000(after.taskwire - before.taskwire),
                  queue_row_writes: after.queue - before.queue,
                }
              : {}),
          },
        };
      }),
    );
  },
});
