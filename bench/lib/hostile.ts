// Hostile traffic for robustness runs (the memory-storm test, `npm run soak`): WebSocket frames
// that are junk, oversized, unstorable or abusive, readers that stop reading, and HTTP requests
// that are malformed, oversized or refused, over fetch and raw sockets. Seeded, so a run repeats.
// It only sends and tidies up; judging the server is the caller's job.
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';

/** A small seeded PRNG (mulberry32): the same seed gives the same storm. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, items: readonly T[]): T => items[Math.floor(r() * items.length)];
const int = (r: Rand, min: number, max: number) => min + Math.floor(r() * (max - min + 1));
const junk = (r: Rand, n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(int(r, 0, 0x2fff));
  return s;
};
const UNSTORABLE = ['\\u0000', '\\ud800', '\\udc00', '\\ude00\\ud83d'];
const uuid = (r: Rand) =>
  '0190xxxx-xxxx-7xxx-8xxx-xxxxxxxxxxxx'.replace(/x/g, () => Math.floor(r() * 16).toString(16));

/** Runs `count` jobs, `concurrency` at a time. */
async function pool(count: number, concurrency: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

export interface WebSocketStormOptions {
  /** ws://host:port/socket */
  wsUrl: string;
  token: string;
  /** A running task of the token's user, so joins subscribe to live progress. */
  taskId: string;
  /** Hostile frames to send in all. */
  items: number;
  concurrency?: number;
  /** The server's TASKWIRE_MAX_FRAME_BYTES: big frames go up to it, and one past it. */
  maxFrameBytes: number;
  seed?: number;
}

export interface StormTally {
  sockets: number;
  items: number;
  closedByServer: number;
  refused: number;
}

/** One frame of junk, abuse or unstorable text (V2 serializer), `maxFrameBytes` bounding the big ones. */
function hostileFrame(r: Rand, taskId: string, maxFrameBytes: number): string | Buffer {
  switch (int(r, 0, 11)) {
    case 0:
      return junk(r, int(r, 0, 200));
    case 1:
      return `[null,"1","task:${taskId}","phx_join",{"x":"${pick(r, UNSTORABLE)}"}]`;
    case 2:
      return `["1","2","task:${uuid(r)}","phx_join",{}]`;
    case 3:
      return `["3","3","task:${taskId}","phx_join",{}]`;
    case 4:
      return `["3","4","task:${taskId}","phx_leave",{}]`;
    case 5:
      return `[null,"5","${pick(r, UNSTORABLE)}topic","event",{"${pick(r, UNSTORABLE)}":1}]`;
    case 6: // a big frame, under the limit
      return `[null,"6","phoenix","heartbeat",{"pad":"${'x'.repeat(int(r, 1, maxFrameBytes - 100))}"}]`;
    case 7: // one byte past the limit: the server closes with 1009
      return Buffer.alloc(maxFrameBytes + 1, 0x61);
    case 8:
      return Buffer.from(Array.from({ length: int(r, 1, 300) }, () => int(r, 0, 255)));
    case 9:
      return JSON.stringify([
        null,
        null,
        `task:${taskId}`,
        'phx_join',
        { deep: JSON.parse(`${'['.repeat(600)}${']'.repeat(600)}`) },
      ]);
    case 10:
      return '[null,"hb","phoenix","heartbeat",{}]';
    default:
      return `{"topic":"${junk(r, 5)}","event":"phx_join","payload":[],"ref":${int(r, 0, 9)}}`;
  }
}

/**
 * Sockets that each send a few hostile frames, some of them joining a live task and then not
 * reading at all (a stalled reader the server must buffer for, then cut), and then go away.
 */
export async function webSocketStorm(o: WebSocketStormOptions): Promise<StormTally> {
  const r = rng(o.seed ?? 1);
  const tally: StormTally = { sockets: 0, items: 0, closedByServer: 0, refused: 0 };
  const plans: Array<{ frames: number; stall: boolean; vsn: string }> = [];
  for (let sent = 0; sent < o.items; ) {
    const frames = Math.min(int(r, 1, 9), o.items - sent);
    plans.push({ frames, stall: r() < 0.1, vsn: r() < 0.2 ? '1.0.0' : '2.0.0' });
    sent += frames;
  }
  await pool(plans.length, o.concurrency ?? 32, async (i) => {
    const plan = plans[i];
    const ws = new WebSocket(`${o.wsUrl}/websocket?token=${o.token}&vsn=${plan.vsn}`, {
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
    });
    ws.on('error', () => {});
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('unexpected-response', () => resolve(false));
      ws.once('error', () => resolve(false));
    });
    if (!opened) {
      tally.refused += 1;
      ws.terminate();
      return;
    }
    tally.sockets += 1;
    if (plan.stall) {
      // Join the live task and stop reading: progress piles up in the server's buffer.
      ws.send(`["s","s","task:${o.taskId}","phx_join",{}]`);
      (ws as unknown as { _socket: net.Socket })._socket.pause();
    }
    for (let f = 0; f < plan.frames && ws.readyState === WebSocket.OPEN; f++) {
      ws.send(hostileFrame(r, o.taskId, o.maxFrameBytes));
      tally.items += 1;
    }
    const serverClosed = await Promise.race([closed.then(() => true), holdFor(plan.stall ? 300 : 20)]);
    if (serverClosed) tally.closedByServer += 1;
    ws.terminate();
    await closed;
  });
  return tally;
}

/** Resolves false after `ms`: how long a socket lingers before the client drops it. */
function holdFor(ms: number): Promise<false> {
  return new Promise((resolve) => setTimeout(resolve, ms, false));
}

export interface HttpStormOptions {
  /** http://host:port */
  httpUrl: string;
  token: string;
  requests: number;
  concurrency?: number;
  /** The server's TASKWIRE_BODY_LIMIT: big bodies go up to it, and past it. */
  bodyLimit: number;
  seed?: number;
}

/** Raw bytes for what fetch won't send: bad methods, framing, huge lines and headers. */
function rawHostile(r: Rand, token: string): string {
  switch (int(r, 0, 6)) {
    case 0:
      return `BREW /api/tasks HTTP/1.1\r\nHost: x\r\n\r\n`;
    case 1:
      return `GET /api/tasks?x=${'a'.repeat(int(r, 17_000, 60_000))} HTTP/1.1\r\nHost: x\r\n\r\n`;
    case 2:
      return `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(int(r, 17_000, 60_000))}\r\n\r\n`;
    case 3:
      return `POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`;
    case 4:
      return `POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nIdempotency-Key: a\u0000b\r\nContent-Length: 2\r\n\r\n{}`;
    case 5:
      return `${junk(r, int(r, 1, 500))}\r\n\r\n`;
    default:
      return `GET /api/tasks/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  }
}

function rawSend(url: URL, bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 5000);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', () => {}); // read the answer; the server closes after a refusal
    socket.write(bytes, 'latin1');
  });
}

/** One request over `agent`; resolves with the status (0 when the server cut it). */
function send(
  agent: http.Agent,
  url: URL,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers, agent, timeout: 15_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end(body);
  });
}

/**
 * Requests that are refused one way or another: NUL and lone surrogates in bodies, bodies up to
 * and past the limit, deep JSON, bad tokens, unknown routes and methods, LongPoll sessions opened
 * and never polled, LongPoll POSTs past the frame limit, and raw bytes no client library sends.
 * Its keep-alive connections are closed when it returns.
 */
export async function httpStorm(
  o: HttpStormOptions,
): Promise<{ requests: number; statuses: Record<number, number> }> {
  const r = rng(o.seed ?? 2);
  const url = new URL(o.httpUrl);
  const concurrency = o.concurrency ?? 32;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses: Record<number, number> = {};
  const seeds = Array.from({ length: o.requests }, () => int(r, 0, 2 ** 31));
  const auth = { authorization: `Bearer ${o.token}` };
  const json = { ...auth, 'content-type': 'application/json' };
  await pool(o.requests, concurrency, async (i) => {
    const q = rng(seeds[i]);
    const kind = int(q, 0, 9);
    let status: number;
    if (kind === 0) {
      await rawSend(url, rawHostile(q, o.token));
      return;
    }
    if (kind === 1) {
      const body = `{"steps":1,"interval_ms":0,"note":"${junk(q, int(q, 0, 100))}${pick(q, UNSTORABLE)}"}`;
      status = await send(agent, url, 'POST', '/api/tasks', json, body);
    } else if (kind === 2) {
      // Up to twice the limit; those under it end in a NUL, so all are refused (413 or 422).
      const body = `{"pad":"${'p'.repeat(int(q, o.bodyLimit / 2, o.bodyLimit * 2))}\\u0000"}`;
      status = await send(agent, url, 'POST', '/api/tasks', json, body);
    } else if (kind === 3) {
      const depth = int(q, 600, 20_000);
      status = await send(
        agent,
        url,
        'POST',
        '/api/tasks',
        json,
        `{"tree":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      );
    } else if (kind === 4) {
      const bad = { authorization: `Bearer ${junk(q, int(q, 10, 400)).replace(/[^\x21-\x7e]/g, 'x')}` };
      status = await send(agent, url, 'GET', '/api/tasks', bad);
    } else if (kind === 5) {
      const path = `/${pick(q, ['nope', 'api/tasks/%zz', 'api/tasks/x/y/z', 'docs/static/x'])}`;
      status = await send(agent, url, pick(q, ['GET', 'PUT', 'DELETE', 'PATCH']), path, {});
    } else if (kind === 6) {
      // A LongPoll session opened and never polled again: it lives until it expires.
      status = await send(agent, url, 'GET', `/socket/longpoll?vsn=2.0.0&token=${o.token}`, {});
    } else if (kind === 7) {
      const body = 'x'.repeat(int(q, 1000, o.bodyLimit));
      const ndjson = { 'content-type': 'application/x-ndjson' };
      status = await send(
        agent,
        url,
        'POST',
        '/socket/longpoll?vsn=2.0.0&token=lp1.forged.sig',
        ndjson,
        body,
      );
    } else if (kind === 8) {
      const key = { ...json, 'idempotency-key': 'k'.repeat(int(q, 256, 8000)) };
      status = await send(agent, url, 'POST', '/api/tasks', key, '{"steps":1,"interval_ms":0}');
    } else {
      const cursor = junk(q, 30).replace(/[^a-z]/g, '');
      status = await send(agent, url, 'GET', `/api/tasks?type=a%00b&cursor=${cursor}`, auth);
    }
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
  agent.destroy();
  return { requests: o.requests, statuses };
}
