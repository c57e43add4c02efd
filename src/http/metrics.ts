// Prometheus metrics (prom-client), one registry per server so that several servers in one
// process (tests) never mix figures. Parts report through the small callbacks wired here.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** What is in flight, read from the database at scrape time by one cheap query. */
export interface InFlightCounts {
  /** Tasks by in-flight status (`queued`, `running`; the index `tasks_active_idx` covers them). */
  tasks: Record<string, number>;
  /** Queue jobs: `ready` (runnable now), `scheduled` (a future run_at: retries), `locked` (being run). */
  queue: Record<string, number>;
  /** Seconds the oldest ready job has waited to be picked up (0 when none waits). */
  oldestReadySeconds: number;
}

export interface MetricSources {
  sockets(): number;
  channels(): number;
  conflated(): number;
  eventsOut(): number;
  liveActors(): number;
  snapshotPending(): number;
  /** The database's view of what is in flight; without it those gauges are not reported. */
  counts?(): Promise<InFlightCounts>;
  /** The bus between nodes (absent for a lone node). */
  bus?(): BusFigures;
  /** Queued tasks by why they wait (fair scheduling), read at scrape time. */
  waiting?(): Promise<WaitingFigures>;
}

/** Queued tasks by the reason they wait: `scheduled`, `user_limit`, `type_limit`, `turn`. */
export interface WaitingFigures {
  count: Record<string, number>;
  oldestSeconds: Record<string, number>;
}

/** Running totals and state of the bus, as the cluster and its transport count them. */
export interface BusFigures {
  up: boolean;
  peers: number;
  eventsOut: number;
  eventsIn: number;
  dropped: number;
  reconnects: number;
}

export function createMetrics(sources: () => MetricSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'taskwire_' });
  const tasksCreated = new Counter({
    name: 'taskwire_tasks_created_total',
    help: 'Tasks created',
    labelNames: ['type'],
    registers: [registry],
  });
  const attempts = new Counter({
    name: 'taskwire_attempts_total',
    help: 'Attempts ended, by outcome',
    labelNames: ['type', 'outcome'],
    registers: [registry],
  });
  const progressIn = new Counter({
    name: 'taskwire_progress_events_total',
    help: 'Progress updates reported by handlers',
    registers: [registry],
  });
  const snapshotFlush = new Histogram({
    name: 'taskwire_snapshot_flush_seconds',
    help: 'Duration of one snapshot flush',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const snapshotRows = new Counter({
    name: 'taskwire_snapshot_rows_total',
    help: 'Task snapshots written',
    registers: [registry],
  });
  const gauge = (name: string, help: string, read: (s: MetricSources) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(sources()));
      },
    });
  gauge('taskwire_open_sockets', 'Open client connections (WebSocket and LongPoll)', (s) => s.sockets());
  gauge('taskwire_joined_channels', 'Joined channels over all connections', (s) => s.channels());
  gauge('taskwire_task_actors', 'Live task actors in memory', (s) => s.liveActors());
  gauge('taskwire_snapshot_pending', 'Actors with progress not yet saved', (s) => s.snapshotPending());
  // Counters whose source is a running total kept by another part: add what grew since last scrape.
  const totalCounter = (name: string, help: string, read: (s: MetricSources) => number) => {
    let last = 0;
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const value = read(sources());
        if (value > last) this.inc(value - last);
        last = value;
      },
    });
  };
  totalCounter(
    'taskwire_conflated_updates_total',
    'Progress updates skipped for slow consumers (a newer one was sent instead)',
    (s) => s.conflated(),
  );
  totalCounter('taskwire_events_delivered_total', 'Task events written to client connections', (s) =>
    s.eventsOut(),
  );
  gauge('taskwire_bus_up', 'The bus to the other nodes is connected (1), or down (0)', (s) =>
    s.bus ? Number(s.bus().up) : 1,
  );
  gauge('taskwire_bus_peers', 'Other nodes heard on the bus recently', (s) => s.bus?.().peers ?? 0);
  totalCounter(
    'taskwire_bus_events_published_total',
    'Events sent to other nodes (one per receiving node)',
    (s) => s.bus?.().eventsOut ?? 0,
  );
  totalCounter(
    'taskwire_bus_events_received_total',
    'Events received from other nodes',
    (s) => s.bus?.().eventsIn ?? 0,
  );
  totalCounter(
    'taskwire_bus_messages_dropped_total',
    'Bus messages dropped as malformed or forged',
    (s) => s.bus?.().dropped ?? 0,
  );
  totalCounter(
    'taskwire_bus_reconnects_total',
    'Reconnections of the bus after a loss',
    (s) => s.bus?.().reconnects ?? 0,
  );
  const outputRows = new Counter({
    name: 'taskwire_output_rows_total',
    help: 'Output segments written (rows); chunks per row = taskwire_output_chunks_total / this',
    registers: [registry],
  });
  const outputChunks = new Counter({
    name: 'taskwire_output_chunks_total',
    help: 'Output chunks written',
    registers: [registry],
  });
  const outputFlush = new Histogram({
    name: 'taskwire_output_flush_seconds',
    help: 'Duration of one output flush (one statement for every task)',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const busLag = new Histogram({
    name: 'taskwire_bus_lag_seconds',
    help: 'From an event leaving the node that published it to its arrival here',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });

  // Tasks by status and queue depth: one query per scrape, shared by the gauges below (a scrape
  // collects every metric at once, so they all find the read in flight). When it fails (the
  // database is away) those series are absent from that scrape rather than failing /metrics.
  let reading: Promise<InFlightCounts | undefined> | undefined;
  const readCounts = () => {
    if (!reading) {
      const source = sources();
      reading = (source.counts ? source.counts().catch(() => undefined) : Promise.resolve(undefined)).finally(
        () => {
          reading = undefined;
        },
      );
    }
    return reading;
  };
  const countsGauge = (
    name: string,
    help: string,
    labelNames: string[],
    write: (g: Gauge<string>, c: InFlightCounts) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const c = await readCounts();
        this.reset();
        if (c) write(this, c);
      },
    });
  countsGauge('taskwire_tasks', 'Tasks in flight, by status (from the database)', ['status'], (g, c) => {
    for (const [status, n] of Object.entries(c.tasks)) g.set({ status }, n);
  });
  countsGauge(
    'taskwire_queue_jobs',
    'Queue depth: jobs ready to run, scheduled for later (retries), locked by a worker',
    ['state'],
    (g, c) => {
      for (const [state, n] of Object.entries(c.queue)) g.set({ state }, n);
    },
  );
  countsGauge(
    'taskwire_queue_oldest_ready_seconds',
    'How long the oldest ready job has waited for a worker (0 when none waits)',
    [],
    (g, c) => g.set(c.oldestReadySeconds),
  );
  // Waiting tasks by reason: one more query per scrape, shared by its two gauges.
  let readingWaits: Promise<WaitingFigures | undefined> | undefined;
  const readWaits = () => {
    if (!readingWaits) {
      const source = sources();
      readingWaits = (
        source.waiting ? source.waiting().catch(() => undefined) : Promise.resolve(undefined)
      ).finally(() => {
        readingWaits = undefined;
      });
    }
    return readingWaits;
  };
  const waitsGauge = (name: string, help: string, pick: (w: WaitingFigures) => Record<string, number>) =>
    new Gauge({
      name,
      help,
      labelNames: ['reason'],
      registers: [registry],
      async collect() {
        const w = await readWaits();
        this.reset();
        if (w) for (const [reason, n] of Object.entries(pick(w))) this.set({ reason }, n);
      },
    });
  waitsGauge(
    'taskwire_waiting_tasks',
    'Queued tasks by why they wait: scheduled (start time not come), user_limit, type_limit (a cap is full), turn (a free worker and their turn)',
    (w) => w.count,
  );
  waitsGauge(
    'taskwire_waiting_oldest_seconds',
    'How long the longest-waiting queued task of each reason has waited (since due; scheduled: since created)',
    (w) => w.oldestSeconds,
  );
  const queuePickup = new Histogram({
    name: 'taskwire_queue_pickup_seconds',
    help: 'From a job being due (created, or its retry time) to a worker starting it',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  const prunedRows = new Counter({
    name: 'taskwire_pruned_rows_total',
    help: 'Rows deleted past TASKWIRE_RETENTION, by table (tasks and the rows that belong to them)',
    labelNames: ['table'],
    registers: [registry],
  });

  return {
    registry,
    tasksCreated,
    attempts,
    progressIn,
    snapshotFlush,
    snapshotRows,
    queuePickup,
    busLag,
    outputRows,
    outputChunks,
    outputFlush,
    prunedRows,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
