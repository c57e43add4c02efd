// Memory under hostile input (issue 12): a storm of hostile WebSocket frames (junk, unstorable
// text, oversized frames, joins, readers that stop reading) and hostile HTTP requests (refused
// bodies up to twice the limit, deep JSON, bad framing, huge headers, LongPoll sessions left to
// expire) against a real `taskwire start` process. Once the storm's connections are gone, the
// server's resident memory comes back within WITHIN_MB of where it was before the storm.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { httpStorm, webSocketStorm } from '../../bench/lib/hostile.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { post, type ServerProcess, spawnServer, testToken } from '../helpers/process.ts';
import { waitFor } from '../helpers/wait.ts';

const MB = 1_048_576;
/** The storm: sized to run in well under a minute on a busy 2-core machine. */
const WS_ITEMS = Number(process.env.STORM_WS_ITEMS ?? 3000);
const HTTP_REQUESTS = Number(process.env.STORM_HTTP_REQUESTS ?? 3000);
const FRAME_LIMIT = 1_048_576;
const BODY_LIMIT = 1_048_576;

let db: TestDatabase;
let server: ServerProcess;

before(async () => {
  db = await createTestDatabase();
  server = await spawnServer({
    databaseUrl: db.url,
    nodeId: 'storm',
    // The defaults, but LongPoll sessions left unpolled expire in 3 s rather than 15 s.
    env: {
      TASKWIRE_LONGPOLL_WINDOW_MS: '2000',
      ...(process.env.STORM_SERVER_ENV ? JSON.parse(process.env.STORM_SERVER_ENV) : {}),
    },
  });
});
after(async () => {
  if (server && server.child.exitCode === null) server.kill('SIGKILL');
  await server?.exited;
  await db?.drop();
});

function rss(): number {
  const status = readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
}

async function openSockets(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^taskwire_open_sockets (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

/** The resident size once two looks a second apart agree within 4 MB (bounded). */
async function settledRss(): Promise<number> {
  let last = rss();
  return waitFor(
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = rss();
      const settled = Math.abs(now - last) < 4 * MB ? now : undefined;
      last = now;
      return settled;
    },
    'the resident size to settle',
    20_000,
    0,
  );
}

/**
 * How far above its pre-storm size the server may stay: glibc keeps ~50 MB of the storm in its main
 * arena, which no GC returns (README, "Memory"). This was 50 MB until the server's own baseline got
 * leaner (issue 14: the bundle, the GC once the loop is quiet, two malloc arenas): the RSS before
 * the storm went from 141–150 to 103–115 MB while the RSS at the end went from 164–176 to
 * 156–164 MB, so the same end measured 44–53 MB above the start. Without the release the process
 * stayed ~140 MB above.
 */
const WITHIN_MB = 60;

test(`after a storm of hostile WebSocket and HTTP input, RSS comes back within ${WITHIN_MB} MB`, {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 240_000,
}, async () => {
  const token = await testToken('stormer');
  // A live task, so joins subscribe to progress and stalled readers pile it up.
  const created = await post(server.url, token, '/api/tasks', { steps: 100_000, interval_ms: 10 });
  assert.equal(created.status, 201);
  const taskId = created.body.task_id;
  const wsUrl = `${server.url.replace(/^http/, 'ws')}/socket`;
  const storm = (ws: number, http: number, seed: number) =>
    Promise.all([
      webSocketStorm({ wsUrl, token, taskId, items: ws, maxFrameBytes: FRAME_LIMIT, seed }),
      httpStorm({ httpUrl: server.url, token, requests: http, bodyLimit: BODY_LIMIT, seed: seed + 1 }),
    ]);

  // Warm up (code compiled, pools filled) with a small storm, then take the starting point.
  await storm(300, 300, 7);
  await waitFor(async () => (await openSockets()) === 0, 'the warm-up sockets to close', 30_000, 200);
  const start = await settledRss();

  let peak = start;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss());
  }, 250);
  const began = Date.now();
  const [ws, http] = await storm(WS_ITEMS, HTTP_REQUESTS, 1);
  const stormMs = Date.now() - began;
  clearInterval(sampler);
  assert.equal(ws.items, WS_ITEMS, 'every hostile frame was sent');
  assert.equal(http.requests, HTTP_REQUESTS);
  assert.equal(http.statuses[500] ?? 0, 0, `no 500 in ${JSON.stringify(http.statuses)}`);

  await waitFor(async () => (await openSockets()) === 0, 'every storm connection to close', 30_000, 200);
  const closedAt = rss();
  // The server gives freed memory back on its own (no GC is forced from here); allow it the
  // 30 s gap between two of its memory-reducing GCs, one look (5 s) and the unmapping.
  let end = closedAt;
  await waitFor(
    () => {
      end = rss();
      return end - start <= WITHIN_MB * MB;
    },
    `the resident size to come back within ${WITHIN_MB} MB of the start`,
    45_000,
    500,
  ).catch(() => {});
  console.log(
    `# storm: ${ws.items} WebSocket frames on ${ws.sockets} sockets + ${http.requests} HTTP requests in ${stormMs} ms; ` +
      `RSS ${Math.round(start / MB)} MB before, ${Math.round(peak / MB)} MB peak, ` +
      `${Math.round(closedAt / MB)} MB when the connections had closed, ${Math.round(end / MB)} MB at the end`,
  );
  assert.ok(
    end - start <= WITHIN_MB * MB,
    `RSS ${Math.round(end / MB)} MB, ${Math.round((end - start) / MB)} MB above the start`,
  );
  const res = await post(server.url, token, '/api/tasks', { steps: 1, interval_ms: 0 });
  assert.equal(res.status, 201, 'the server still serves');
  server.kill('SIGTERM');
  assert.equal(await server.exited, 0);
});
