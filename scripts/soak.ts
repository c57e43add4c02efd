// `npm run soak [-- --minutes 20]`: a long mixed run against a real `taskwire start` process (not
// part of `npm test`): tasks created and watched to their end over WebSockets, sockets joining and
// leaving, LongPoll clients polling, and every 10 s a burst of hostile frames and requests. Each
// minute it prints the server's RSS, V8 heap, event-loop lag and what the load did; at the end,
// how RSS moved from the first minute to the last. It judges nothing: the figures are the output.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import WebSocket from 'ws';
import { bool, helpText, int, parseFlags, UsageError } from '../bench/lib/args.ts';
import { mintToken } from '../bench/lib/auth.ts';
import { httpStorm, webSocketStorm } from '../bench/lib/hostile.ts';
import { startTaskwire } from '../bench/lib/targets.ts';

const FLAGS = {
  minutes: int(20, 'how long to run'),
  createsPerSecond: int(5, 'tasks created per second (each watched to its end)'),
  churnPerSecond: int(5, 'sockets opened per second that join a task and leave again'),
  longPollClients: int(5, 'LongPoll clients polling all the time'),
  hostileEverySeconds: int(10, 'a burst of hostile input this often'),
  hostileItems: int(200, 'hostile WebSocket frames and as many HTTP requests per burst'),
  help: bool(false, 'this help'),
};

let flags: ReturnType<typeof parseFlags<typeof FLAGS>>;
try {
  flags = parseFlags(FLAGS, process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`${err.message}\n\n${helpText(FLAGS)}\n`);
  process.exit(64);
}
if (flags.help) {
  process.stdout.write(`npm run soak -- [flags]\n\n${helpText(FLAGS)}\n`);
  process.exit(0);
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const MB = 1_048_576;
const counts = { created: 0, ended: 0, joins: 0, churned: 0, polls: 0, hostile: 0, errors: 0 };
let running = true;

const target = await startTaskwire({
  runId: `soak-${Date.now()}`,
  log: (line) => out(`# ${line}`),
  // The defaults for every limit, as a deployment would run it; info logs, to count the GCs.
  env: {
    LOG_LEVEL: 'info',
    TASKWIRE_MAX_SOCKETS_PER_USER: '1000',
    TASKWIRE_MAX_CREATES_PER_MINUTE: '6000',
    TASKWIRE_MAX_CHANNELS: '100',
    TASKWIRE_MAX_MESSAGES_PER_SECOND: '200',
  },
});
const wsUrl = `${target.socketUrl}/socket`;
const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => mintToken(`soak-${i}`, 48 * 3600)));
const token = (i: number) => tokens[i % tokens.length];
/** Tasks now running or queued, to join. */
const live: Array<{ id: string; user: number }> = [];

function open(user: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsUrl}/websocket?token=${token(user)}&vsn=2.0.0`, {
      perMessageDeflate: false,
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Creates one task and watches it to its end on a socket of its own, then leaves and closes. */
async function createAndWatch(n: number): Promise<void> {
  const user = n % tokens.length;
  const res = await target.http.request('POST', '/api/tasks', { steps: 20, interval_ms: 100 }, token(user));
  if (res.status !== 201) throw new Error(`create answered ${res.status}`);
  counts.created += 1;
  const id = res.body.task_id as string;
  live.push({ id, user });
  const ws = await open(user);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`task ${id} did not end in 60 s`)), 60_000);
    ws.on('message', (data) => {
      const [, , , event] = JSON.parse(String(data));
      if (event === 'completed' || event === 'failed' || event === 'cancelled') {
        clearTimeout(timer);
        resolve();
      }
    });
    ws.send(JSON.stringify(['1', '1', `task:${id}`, 'phx_join', {}]));
    counts.joins += 1;
  });
  counts.ended += 1;
  live.splice(
    live.findIndex((t) => t.id === id),
    1,
  );
  ws.send(JSON.stringify(['1', '2', `task:${id}`, 'phx_leave', {}]));
  ws.close();
}

/** A socket that joins a live task for 1 to 5 s and goes away without leaving. */
async function churn(n: number): Promise<void> {
  const task = live[n % Math.max(1, live.length)];
  if (!task) return;
  const ws = await open(task.user);
  ws.send(JSON.stringify(['1', '1', `task:${task.id}`, 'phx_join', {}]));
  counts.joins += 1;
  await new Promise((resolve) => setTimeout(resolve, 1000 + (n % 5) * 1000));
  ws.terminate();
  counts.churned += 1;
}

function lp(method: string, path: string, body?: string): Promise<{ status: number; body: LongPollBody }> {
  const url = new URL(target.httpUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: body ? { 'content-type': 'application/x-ndjson' } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

type LongPollBody = { status?: number; token?: string } | undefined;

/** A LongPoll client: a session, a join of a live task now and then, and polls back to back. */
async function longPollClient(i: number): Promise<void> {
  const q = `vsn=2.0.0&token=${token(i)}`;
  while (running) {
    const created = await lp('GET', `/socket/longpoll?${q}`);
    const session = encodeURIComponent(created.body?.token ?? '');
    for (let polls = 0; running && polls < 30; polls++) {
      const task = live.find((t) => t.user === i % tokens.length);
      if (task && polls % 10 === 0) {
        await lp(
          'POST',
          `/socket/longpoll?${q}&token=${session}`,
          JSON.stringify(['1', String(polls), `task:${task.id}`, 'phx_join', {}]),
        );
        counts.joins += 1;
      }
      const res = await lp('GET', `/socket/longpoll?${q}&token=${session}`);
      counts.polls += 1;
      if (res.body?.status === 410) break;
    }
  }
}

/** Runs `job` `perSecond` times a second until the end, counting failures. */
function every(perSecond: number, job: (n: number) => Promise<void>): Promise<void> {
  let n = 0;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (!running) {
        clearInterval(timer);
        resolve();
        return;
      }
      for (let k = 0; k < perSecond; k++) job(n++).catch(() => (counts.errors += 1));
    }, 1000);
  });
}

async function hostileBursts(): Promise<void> {
  let seed = 1;
  while (running) {
    await new Promise((resolve) => setTimeout(resolve, flags.hostileEverySeconds * 1000));
    const task = live[0];
    if (!running || !task) continue;
    await Promise.all([
      webSocketStorm({
        wsUrl,
        token: token(task.user),
        taskId: task.id,
        items: flags.hostileItems,
        maxFrameBytes: 1_048_576,
        seed: seed++,
        concurrency: 8,
      }),
      httpStorm({
        httpUrl: target.httpUrl,
        token: token(task.user),
        requests: flags.hostileItems,
        bodyLimit: 1_048_576,
        seed: seed++,
        concurrency: 8,
      }),
    ]).catch(() => (counts.errors += 1));
    counts.hostile += flags.hostileItems * 2;
  }
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

const rows: Array<{ minute: number; rss: number; heapUsed: number; heapTotal: number }> = [];
async function report(minute: number): Promise<void> {
  const probe = await target.probe(false);
  const text = String((await target.http.request('GET', '/metrics')).body);
  const lagP99 = metric(text, 'taskwire_nodejs_eventloop_lag_p99_seconds') * 1000;
  const lagMax = metric(text, 'taskwire_nodejs_eventloop_lag_max_seconds') * 1000;
  rows.push({ minute, rss: probe.rss, heapUsed: probe.heapUsed, heapTotal: probe.heapTotal });
  out(
    `minute ${String(minute).padStart(3)}  RSS ${(probe.rss / MB).toFixed(0).padStart(4)} MB  ` +
      `heap ${(probe.heapUsed / MB).toFixed(0)}/${(probe.heapTotal / MB).toFixed(0)} MB  ` +
      `loop lag p99 ${lagP99.toFixed(1)} ms max ${lagMax.toFixed(0)} ms  ELU ${probe.elu.toFixed(2)}  ` +
      `sockets ${metric(text, 'taskwire_open_sockets')}  created ${counts.created} ended ${counts.ended} ` +
      `joins ${counts.joins} churned ${counts.churned} polls ${counts.polls} hostile ${counts.hostile} errors ${counts.errors}`,
  );
}

out(
  `# soak: ${flags.minutes} min; ${flags.createsPerSecond} tasks/s watched, ${flags.churnPerSecond} sockets/s churning, ` +
    `${flags.longPollClients} LongPoll clients, ${flags.hostileItems}+${flags.hostileItems} hostile items every ${flags.hostileEverySeconds} s`,
);
await report(0);
const load = Promise.all([
  every(flags.createsPerSecond, createAndWatch),
  every(flags.churnPerSecond, churn),
  ...Array.from({ length: flags.longPollClients }, (_, i) =>
    longPollClient(i).catch(() => (counts.errors += 1)),
  ),
  hostileBursts(),
]);
for (let minute = 1; minute <= flags.minutes; minute++) {
  await new Promise((resolve) => setTimeout(resolve, 60_000));
  await report(minute);
}
running = false;
await Promise.race([load, new Promise((resolve) => setTimeout(resolve, 30_000))]);
const first = rows[1] ?? rows[0];
const last = rows[rows.length - 1];
const maxRss = Math.max(...rows.map((r) => r.rss));
out(
  `# soak done: RSS ${(first.rss / MB).toFixed(0)} MB after minute ${first.minute}, ${(last.rss / MB).toFixed(0)} MB after minute ` +
    `${last.minute} (max ${(maxRss / MB).toFixed(0)} MB); heap used ${(first.heapUsed / MB).toFixed(0)} -> ${(last.heapUsed / MB).toFixed(0)} MB; ` +
    `${counts.created} tasks created, ${counts.ended} watched to their end, ${counts.hostile} hostile items, ${counts.errors} errors`,
);
const gcs = readFileSync(target.child.logFile, 'utf8')
  .split('\n')
  .filter((l) => l.includes('"msg":"resident memory grew: memory-reducing GC"'))
  .map((l) => JSON.parse(l) as { gc_ms: number });
out(
  `# memory-reducing GCs: ${gcs.length}, pauses ${gcs.map((g) => g.gc_ms).join(', ') || '-'} ms ` +
    `(TASKWIRE_HEAP_RELEASE_MB; server log ${target.child.logFile})`,
);
await target.stop();
