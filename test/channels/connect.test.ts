// Connect-time rules of both transports: token sources (query by Plug rules, the authToken
// subprotocol, the LongPoll header), origin allow-list, per-user socket quota, quiet refusal
// logs, and close(). The real channels part on a bare HTTP server, with the in-memory FakeTasks
// stand-in for the task service (no database needed for these).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { LongPoll, Socket } from 'phoenix';
import pino from 'pino';
import { OriginPolicy, Tokens } from '../../src/auth/index.ts';
import { attachChannels, type Channels, type ChannelsOptions } from '../../src/channels/index.ts';
import { logSink } from '../helpers/log-sink.ts';
import { FakeTasks } from './fake-tasks.ts';
import { deferred, eventually, probe, Wire, within } from './wire.ts';

const SECRET = 'connect-test-secret-0123456789';
const tokens = new Tokens(SECRET);

interface Rig {
  url: string;
  wsUrl: string;
  channels: Channels;
  tasks: FakeTasks;
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function rig(config: Partial<ChannelsOptions['config']> = {}): Promise<Rig> {
  let channels: Channels | undefined;
  // What src/http does for LongPoll: hand the raw request to channels.longPoll.
  const server = http.createServer(async (req, res) => {
    if (!req.url?.startsWith('/socket/longpoll') || !channels) {
      res.statusCode = 404;
      res.end();
      return;
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    const answer = await channels.longPoll({
      method: req.method ?? 'GET',
      url: req.url,
      headers: req.headers,
      body,
    });
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sink = logSink();
  const logs = sink.lines;
  const tasks = new FakeTasks();
  channels = attachChannels({
    server,
    tasks,
    tokens,
    config: {
      allowedOrigins: [],
      maxFrameBytes: 1 << 20,
      maxChannelsPerSocket: 100,
      socketIdleTimeoutMs: 60_000,
      socketSoftBufferBytes: 1 << 18,
      socketHardBufferBytes: 1 << 23,
      longPollWindowMs: 500,
      maxSocketsPerUser: 1000,
      maxMessagesPerSecond: 200,
      ...config,
    },
    log: pino({ level: 'info' }, sink.stream),
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const attached = channels;
  return {
    url,
    wsUrl: `${url.replace('http', 'ws')}/socket`,
    channels: attached,
    tasks,
    logs,
    async stop() {
      await attached.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

let r: Rig;
let token: string;
const wires: Wire[] = [];
const sockets: Socket[] = [];

before(async () => {
  r = await rig({ maxSocketsPerUser: 3, allowedOrigins: ['https://app.example.com'] });
  token = await tokens.mint('gina');
});

after(async () => {
  for (const s of sockets) s.disconnect();
  for (const w of wires) w.close();
  await r?.stop();
});

describe('connect: token sources', () => {
  test('the last `token` query value wins (Plug rules); a nested token[] is no token', async () => {
    const ok = await probe(r.url, `/socket/websocket?token=bad&vsn=2.0.0&token=${token}`);
    assert.equal(ok.status, 101);
    const last = await probe(r.url, `/socket/websocket?token=${token}&vsn=2.0.0&token=bad`);
    assert.equal(last.status, 403);
    const nested = await probe(r.url, `/socket/websocket?token[]=${token}&vsn=2.0.0`);
    assert.equal(nested.status, 403);
  });

  test('the authToken subprotocol authenticates and the server answers `phoenix`', async () => {
    const b64 = Buffer.from(token).toString('base64').replace(/=+$/, '');
    const wire = await Wire.open(`${r.wsUrl}/websocket?vsn=2.0.0`, {
      protocols: ['phoenix', `base64url.bearer.phx.${b64}`],
    });
    wires.push(wire);
    assert.equal(wire.ws.protocol, 'phoenix');
    assert.equal((await wire.call([null, '1', 'phoenix', 'heartbeat', {}]))[4].status, 'ok');
    const bad = await probe(r.url, '/socket/websocket?vsn=2.0.0', {
      headers: { 'sec-websocket-protocol': 'phoenix, base64url.bearer.phx.bm9wZQ' },
    });
    assert.equal(bad.status, 403);
    const noPhoenix = await probe(r.url, `/socket/websocket?token=${token}&vsn=2.0.0`, {
      headers: { 'sec-websocket-protocol': 'mqtt' },
    });
    assert.equal(noPhoenix.status, 403, 'offered protocols without phoenix');
    wire.close();
    await eventually(() => r.channels.stats().sockets === 0, 3000, 'socket released');
  });

  test('phoenix.js with authToken (no params) connects over WebSocket and over LongPoll', async () => {
    const id = randomUUID();
    r.tasks.add(id, 'gina');
    for (const transport of [undefined, LongPoll]) {
      const socket = new Socket(r.wsUrl, { authToken: token, ...(transport ? { transport } : {}) });
      sockets.push(socket);
      socket.connect();
      const joined = deferred<any>();
      socket.channel(`task:${id}`, {}).join().receive('ok', joined.resolve).receive('error', joined.reject);
      assert.equal((await within(joined.promise, 5000, 'join with authToken')).task.task_id, id);
      socket.disconnect();
    }
    await eventually(() => r.channels.stats().sockets === 0, 3000, 'sockets released');
  });
});

describe('connect: limits and policy', () => {
  test('origins: exact, scheme-less, wildcard and port rules', () => {
    const p = new OriginPolicy(['https://example.com', '//other.com:888', '//*.example.org']);
    assert.equal(p.allows(undefined), true);
    assert.equal(p.allows('https://example.com'), true);
    assert.equal(p.allows('http://example.com'), false);
    assert.equal(p.allows('https://example.com.evil.net'), false);
    assert.equal(p.allows('http://other.com:888'), true);
    assert.equal(p.allows('https://other.com'), false);
    assert.equal(p.allows('https://example.org'), true);
    assert.equal(p.allows('https://a.b.example.org'), true);
    assert.equal(p.allows('https://badexample.org'), false);
    assert.equal(p.allows('null'), false);
    assert.equal(new OriginPolicy([]).allows('https://anything.example'), true);
  });

  test('a LongPoll request from an origin not allowed gets {"status":403}', async () => {
    const res = await fetch(`${r.url}/socket/longpoll?token=${token}&vsn=2.0.0`, {
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 403 });
  });

  test('sockets per user are capped (429 on WebSocket, 403 on LongPoll) and freed on close', async () => {
    const held = await Promise.all(
      [0, 1, 2].map(() => Wire.open(`${r.wsUrl}/websocket?token=${token}&vsn=2.0.0`)),
    );
    wires.push(...held);
    assert.equal((await probe(r.url, `/socket/websocket?token=${token}&vsn=2.0.0`)).status, 429);
    const lp = await (
      await r.channels.longPoll({
        method: 'GET',
        url: `/socket/longpoll?token=${token}&vsn=2.0.0`,
        headers: {},
        body: undefined,
      })
    ).body;
    assert.deepEqual(JSON.parse(lp), { status: 403 });
    assert.equal(
      (await probe(r.url, `/socket/websocket?token=${await tokens.mint('other')}&vsn=2.0.0`)).status,
      101,
      'other users are not affected',
    );
    held[0].close();
    await eventually(
      async () => (await probe(r.url, `/socket/websocket?token=${token}&vsn=2.0.0`)).status === 101,
      3000,
      'a slot freed',
    );
    for (const w of held) w.close();
  });

  test('upgrades on other paths get 404 when nobody else serves upgrades', async () => {
    assert.equal((await probe(r.url, `/elsewhere?token=${token}`)).status, 404);
  });

  test('refused connects are logged at most 10 times per window, then summed up', async () => {
    const before = r.logs.filter((l) => l.msg === 'socket connect refused').length;
    await Promise.all(
      Array.from({ length: 30 }, () => probe(r.url, '/socket/websocket?token=nope&vsn=2.0.0')),
    );
    const refused = r.logs.filter((l) => l.msg === 'socket connect refused').length - before;
    assert.ok(refused <= 10, `${refused} refusal lines`);
    assert.equal(
      r.logs.some((l) => JSON.stringify(l).includes(token)),
      false,
      'tokens never reach the logs',
    );
  });
});

describe('close()', () => {
  test('closes every WebSocket with 1012 and ends LongPoll sessions (a held GET learns 410)', async () => {
    const own = await rig();
    try {
      const wire = await Wire.open(`${own.wsUrl}/websocket?token=${token}&vsn=2.0.0`);
      const created = JSON.parse(
        (
          await own.channels.longPoll({
            method: 'GET',
            url: `/socket/longpoll?token=${token}&vsn=2.0.0`,
            headers: {},
            body: undefined,
          })
        ).body,
      );
      const held = own.channels.longPoll({
        method: 'GET',
        url: '/socket/longpoll?vsn=2.0.0',
        headers: { 'x-phoenix-longpoll-token': created.token },
        body: undefined,
      });
      assert.equal(own.channels.stats().sockets, 2);
      await own.channels.close();
      assert.equal((await wire.waitClosed()).code, 1012);
      assert.deepEqual(JSON.parse((await held).body), { status: 410 });
      assert.equal(own.channels.stats().sockets, 0);
      assert.equal(
        (await probe(own.url, `/socket/websocket?token=${token}&vsn=2.0.0`)).status,
        404,
        'no longer accepting',
      );
    } finally {
      await own.stop();
    }
  });
});
