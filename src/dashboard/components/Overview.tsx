// The overview: counts by status (each a plain integer in `data-stat="<status>"`), throughput
// (tasks/min by outcome) and run-time p50/p95 per type as uPlot charts, queue depth and oldest
// wait, open sockets, and the nodes of the liveness table. Fed by GET /api/stats and, for
// admins, the `stats` event of `admin:tasks`.
import { useMemo, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Stats } from '../../contract/index.ts';
import { TASK_STATUSES } from '../../contract/task.ts';
import { count, duration } from '../format.ts';
import { Chart } from './Chart.tsx';

export const STATS_WINDOWS = ['15m', '1h', '6h', '24h', '7d'];

const COLORS = {
  completed: '#2f9e44',
  failed: '#e03131',
  cancelled: '#868e96',
  p50: '#1c7ed6',
  p95: '#f08c00',
};

interface Props {
  stats: Stats | null;
  window: string;
  onWindow: (window: string) => void;
  error: string | null;
}

export function Overview({ stats, window, onWindow, error }: Props) {
  const typeNames = useRef<string[]>([]);
  typeNames.current = stats?.types.map((t) => t.type) ?? [];

  const throughput = useMemo<uPlot.AlignedData>(() => {
    const b = stats?.throughput.buckets ?? [];
    const perMinute = 60 / (stats?.throughput.bucket_seconds ?? 60);
    return [
      b.map((x) => Date.parse(x.at) / 1000),
      b.map((x) => x.completed * perMinute),
      b.map((x) => x.failed * perMinute),
      b.map((x) => x.cancelled * perMinute),
    ];
  }, [stats]);

  const durations = useMemo<uPlot.AlignedData>(() => {
    const types = stats?.types ?? [];
    return [types.map((_t, i) => i), types.map((t) => t.p95_ms), types.map((t) => t.p50_ms)];
  }, [stats]);

  // p95 wide behind, p50 narrow in front: each type one bar pair at its own x.
  const wideBars = uPlot.paths.bars!({ size: [0.6, 60] });
  const narrowBars = uPlot.paths.bars!({ size: [0.3, 28] });
  const throughputOptions = () => ({
    series: [
      {},
      { label: 'completed/min', stroke: COLORS.completed, width: 2 },
      { label: 'failed/min', stroke: COLORS.failed, width: 2 },
      { label: 'cancelled/min', stroke: COLORS.cancelled, width: 2 },
    ],
    scales: {
      y: { range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [0, Math.max(1, max)] },
    },
    axes: [{}, { label: 'tasks/min', size: 60 }],
  });
  const durationOptions = () => ({
    series: [
      {
        label: 'type',
        value: (_u: uPlot, i: number | null) => (i === null ? '' : (typeNames.current[i] ?? '')),
      },
      { label: 'p95', fill: COLORS.p95, stroke: COLORS.p95, paths: wideBars, points: { show: false } },
      { label: 'p50', fill: COLORS.p50, stroke: COLORS.p50, paths: narrowBars, points: { show: false } },
    ],
    scales: {
      x: {
        time: false,
        range: (_u: uPlot, min: number, max: number): uPlot.Range.MinMax => [min - 0.5, max + 0.5],
      },
      y: { range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [0, Math.max(1, max)] },
    },
    axes: [
      {
        splits: () => typeNames.current.map((_t, i) => i),
        values: (_u: uPlot, splits: number[]) => splits.map((i) => typeNames.current[i] ?? ''),
      },
      { label: 'run time (ms)', size: 70 },
    ],
  });

  return (
    <section class="overview" aria-label="overview">
      <header class="section-head">
        <h2>Overview {stats ? (stats.scope === 'all' ? '(all users)' : '(your tasks)') : ''}</h2>
        <label>
          window{' '}
          <select
            value={window}
            onChange={(e) => onWindow((e.target as HTMLSelectElement).value)}
            data-filter="window"
          >
            {STATS_WINDOWS.map((w) => (
              <option value={w} key={w}>
                {w}
              </option>
            ))}
          </select>
        </label>
      </header>
      {error && <p class="error">{error}</p>}
      <div class="counts">
        {TASK_STATUSES.map((s) => (
          <div class={`count status-${s}`} key={s}>
            <span class="label">{s === 'queued' || s === 'running' ? `${s} now` : `${s} (${window})`}</span>
            <span class="value" data-stat={s}>
              {stats ? String(stats.counts[s]) : '–'}
            </span>
          </div>
        ))}
        <div class="count">
          <span class="label">queue ready / scheduled</span>
          <span class="value" data-stat-queue="ready">
            {stats ? `${count(stats.queue.ready)} / ${count(stats.queue.scheduled)}` : '–'}
          </span>
        </div>
        <div class="count">
          <span class="label">oldest waiting</span>
          <span class="value" data-stat-queue="oldest_wait">
            {stats ? duration(stats.queue.oldest_wait_seconds * 1000) : '–'}
          </span>
        </div>
        <div class="count">
          <span class="label">open sockets</span>
          <span class="value" data-stat-sockets="">
            {stats ? count(stats.sockets) : '–'}
          </span>
        </div>
      </div>
      <div class="charts">
        <figure>
          <figcaption>Throughput by outcome (tasks/min)</figcaption>
          <Chart options={throughputOptions} data={throughput} height={180} label="throughput by outcome" />
        </figure>
        <figure>
          <figcaption>Run time per type, p50 and p95</figcaption>
          <Chart options={durationOptions} data={durations} height={180} label="run time per type" />
        </figure>
      </div>
      <div class="tables">
        <table class="types">
          <thead>
            <tr>
              <th>type</th>
              {TASK_STATUSES.map((s) => (
                <th key={s}>{s}</th>
              ))}
              <th>p50</th>
              <th>p95</th>
            </tr>
          </thead>
          <tbody>
            {(stats?.types ?? []).map((t) => (
              <tr key={t.type} data-type-stats={t.type}>
                <td>{t.type}</td>
                {TASK_STATUSES.map((s) => (
                  <td key={s}>{count(t.counts[s])}</td>
                ))}
                <td>{duration(t.p50_ms)}</td>
                <td>{duration(t.p95_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <table class="nodes">
          <thead>
            <tr>
              <th>node</th>
              <th>alive</th>
              <th>running</th>
              <th>concurrency</th>
              <th>sockets</th>
              <th>types</th>
            </tr>
          </thead>
          <tbody>
            {(stats?.nodes ?? []).map((n) => (
              <tr key={n.id} data-node={n.id}>
                <td>{n.id}</td>
                <td class={n.alive ? 'ok' : 'bad'}>{n.alive ? 'alive' : 'silent'}</td>
                <td>{count(n.running)}</td>
                <td>{count(n.concurrency)}</td>
                <td>{count(n.sockets)}</td>
                <td>{n.types.join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
