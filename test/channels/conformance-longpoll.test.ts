// Protocol spec §8, cases 8.39-8.46: the LongPoll transport against the real server, with raw
// HTTP and with the phoenix client's LongPoll transport. The poll window is 1 s instead of 10 s.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LongPoll, Socket } from 'phoenix';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { deferred, eventually, within } from './wire.ts';

const WINDOW_MS = 1000;
let srv: TestServer;
let jwt: string;
let T: string;

interface Answer {
  httpStatus: number;
  body: any;
  text: string;
  headers: Headers;
}

async function lp(
  method: string,
  query: string,
  opts: { headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const res = await fetch(`${srv.url}/socket/longpoll?${query}`, {
    method,
    headers: opts.headers,
    body: opts.body,
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { httpStatus: res.status, body, text, headers: res.headers };
}

/** A new session: its token. */
async function session(): Promise<string> {
  const res = await lp('GET', `token=${jwt}&vsn=2.0.0`);
  assert.equal(res.body.status, 410);
  return res.body.token;
}

function post(token: string, lines: unknown[]): Promise<Answer> {
  return lp('POST', 'vsn=2.0.0', {
    headers: { 'content-type': 'application/x-ndjson', 'x-phoenix-longpoll-token': token },
    body: lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'),
  });
}

before(async () => {
  srv = await startTestServer({ longPollWindowMs: WINDOW_MS });
  jwt = await srv.token('frank');
  const task = await srv.createTask(jwt, { steps: 1, interval_ms: 0 });
  T = `task:${task.task_id}`;
  // Finished before the tests start, so joining it yields a reply and no events.
  await srv.waitForStatus(jwt, task.task_id, ['completed']);
});

after(async () => {
  await srv?.stop();
});

describe('LongPoll (8.39-8.45)', () => {
  test('8.39 a GET with a valid JWT creates a session: 200 with status 410 and a token; a bad JWT gets 403', async () => {
    const res = await lp('GET', `token=${jwt}&vsn=2.0.0`);
    assert.equal(res.httpStatus, 200);
    assert.equal(res.body.status, 410);
    assert.match(res.body.token, /^lp1\./);
    assert.deepEqual(res.body.messages, []);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const bad = await lp('GET', 'token=nope&vsn=2.0.0');
    assert.equal(bad.httpStatus, 200);
    assert.deepEqual(bad.body, { status: 403 });
    assert.deepEqual((await lp('GET', `token=${jwt}&vsn=3.0.0`)).body, { status: 403 });
  });

  test('8.40 an ndjson POST of a join returns 200 and the next GET carries the reply frame as a string', async () => {
    const s = await session();
    const ack = await post(s, [['1', '1', T, 'phx_join', {}]]);
    assert.equal(ack.httpStatus, 200);
    assert.deepEqual(ack.body, { status: 200 });
    const poll = await lp('GET', 'vsn=2.0.0', { headers: { 'x-phoenix-longpoll-token': s } });
    assert.equal(poll.body.status, 200);
    assert.equal(poll.body.token, s);
    assert.equal(poll.body.messages.length, 1);
    assert.equal(typeof poll.body.messages[0], 'string');
    const frame = JSON.parse(poll.body.messages[0]);
    assert.deepEqual(frame.slice(0, 4), ['1', '1', T, 'phx_reply']);
    assert.equal(frame[4].status, 'ok');
    assert.equal(frame[4].response.task.task_id, T.slice(5));
  });

  test('8.41 a GET with nothing pending returns 204 after about the window, well under 20 s', async () => {
    const s = await session();
    const started = Date.now();
    const poll = await lp('GET', 'vsn=2.0.0', { headers: { 'x-phoenix-longpoll-token': s } });
    const waited = Date.now() - started;
    assert.deepEqual(poll.body, { status: 204, token: s, messages: [] });
    assert.ok(waited >= WINDOW_MS - 50 && waited < WINDOW_MS * 2, `held ${waited} ms`);
  });

  test('8.42 the session token is the last token query value, after the connect JWT', async () => {
    // The first poll of phoenix.js <= 1.8 ends in `&token=` (no session yet).
    const first = await lp('GET', `token=${jwt}&vsn=2.0.0&token=`);
    assert.equal(first.body.status, 410);
    const s = first.body.token;
    await post(s, [[null, '1', 'phoenix', 'heartbeat', {}]]);
    const poll = await lp('GET', `token=${jwt}&vsn=2.0.0&token=${encodeURIComponent(s)}`);
    assert.equal(poll.body.status, 200, 'the same session, not a new one');
    assert.equal(poll.body.token, s);
    assert.deepEqual(JSON.parse(poll.body.messages[0]), [
      null,
      '1',
      'phoenix',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    // The same token in the query works for POST too.
    const ack = await lp('POST', `token=${jwt}&vsn=2.0.0&token=${encodeURIComponent(s)}`, {
      headers: { 'content-type': 'application/x-ndjson' },
      body: JSON.stringify([null, '2', 'phoenix', 'heartbeat', {}]),
    });
    assert.deepEqual(ack.body, { status: 200 });
  });

  test('8.43 a POST with an unknown or forged session token gets 410, and so does an expired session', async () => {
    const s = await session();
    const forged = `${s.slice(0, -2)}xx`;
    assert.deepEqual((await post(forged, [[null, '1', 'phoenix', 'heartbeat', {}]])).body, { status: 410 });
    assert.deepEqual((await post('lp1.nope.nope', [[null, '1', 'phoenix', 'heartbeat', {}]])).body, {
      status: 410,
    });
    // A GET with a session token that is no longer valid is told the session is gone too.
    assert.deepEqual(
      (await lp('GET', 'vsn=2.0.0', { headers: { 'x-phoenix-longpoll-token': forged } })).body,
      { status: 410 },
    );
    // Not polled for 3 windows (30 s with Phoenix's 10 s): gone.
    await post(s, [['1', '1', T, 'phx_join', {}]]);
    await eventually(
      async () => (await post(s, [[null, '2', 'phoenix', 'heartbeat', {}]])).body.status === 410,
      WINDOW_MS * 4,
      'session expiry',
    );
  });

  test('8.44 an ndjson POST of 101 lines dispatches only the first 100', async () => {
    const s = await session();
    const lines = Array.from({ length: 101 }, (_, i) => [null, String(i + 1), 'phoenix', 'heartbeat', {}]);
    assert.deepEqual((await post(s, lines)).body, { status: 200 });
    const poll = await lp('GET', 'vsn=2.0.0', { headers: { 'x-phoenix-longpoll-token': s } });
    const refs = poll.body.messages.map((m: string) => JSON.parse(m)[1]);
    assert.equal(refs.length, 100);
    assert.deepEqual(
      refs,
      Array.from({ length: 100 }, (_, i) => String(i + 1)),
    );
  });

  test('8.45 OPTIONS returns 200 with CORS headers', async () => {
    const res = await lp('OPTIONS', 'vsn=2.0.0', {
      headers: {
        'access-control-request-headers': 'content-type,x-phoenix-longpoll-token',
        origin: 'https://a.example',
      },
    });
    assert.equal(res.httpStatus, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('access-control-allow-methods'), 'get, post, options');
    assert.equal(res.headers.get('access-control-allow-headers'), 'content-type,x-phoenix-longpoll-token');
    assert.equal(res.headers.get('access-control-max-age'), '3600');
  });

  test('LongPoll: a base64 binary line is decoded as a V2 binary push; a V1 session speaks objects', async () => {
    const s = await session();
    const parts = ['', '7', 'nosuch:x', 'e'].map((p) => Buffer.from(p));
    const binary = Buffer.concat([
      Buffer.from([0, ...parts.map((p) => p.length)]),
      ...parts,
      Buffer.from('{}'),
    ]);
    assert.deepEqual((await post(s, [binary.toString('base64')])).body, { status: 200 });
    const poll = await lp('GET', 'vsn=2.0.0', { headers: { 'x-phoenix-longpoll-token': s } });
    assert.deepEqual(JSON.parse(poll.body.messages[0]), [
      null,
      '7',
      'nosuch:x',
      'phx_reply',
      { status: 'error', response: { reason: 'unmatched topic' } },
    ]);
    // No vsn: V1, and a POST without the ndjson type is one message.
    const v1 = (await lp('GET', `token=${jwt}`)).body.token;
    const ack = await lp('POST', '', {
      headers: { 'content-type': 'application/json', 'x-phoenix-longpoll-token': v1 },
      body: JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '1' }),
    });
    assert.deepEqual(ack.body, { status: 200 });
    const v1poll = await lp('GET', '', { headers: { 'x-phoenix-longpoll-token': v1 } });
    assert.deepEqual(JSON.parse(v1poll.body.messages[0]), {
      topic: 'phoenix',
      event: 'phx_reply',
      payload: { status: 'ok', response: {} },
      ref: '1',
    });
  });
});

describe('phoenix.js over LongPoll (8.46)', () => {
  test('8.46 join, progress events, push and leave work over LongPoll, and no heartbeats are sent', async () => {
    const task = await srv.createTask(jwt, { steps: 5, interval_ms: 60 });
    const logged: string[] = [];
    const socket = new Socket(srv.wsUrl, {
      transport: LongPoll,
      params: { token: jwt },
      heartbeatIntervalMs: 200,
      logger: (kind, msg) => {
        if (kind === 'push') logged.push(msg);
      },
    });
    socket.connect();
    try {
      const channel = socket.channel(`task:${task.task_id}`, {});
      const seqs: number[] = [];
      const completed = deferred<any>();
      channel.on('progress', (p) => {
        seqs.push(p.seq);
      });
      channel.on('completed', completed.resolve);
      const joined = deferred<any>();
      channel.join().receive('ok', joined.resolve).receive('error', joined.reject);
      const reply = await within(joined.promise, 5000, 'join over LongPoll');
      assert.equal(reply.task.task_id, task.task_id);
      const done = await within(completed.promise, 10_000, 'completed over LongPoll');
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
      assert.ok(done.seq > (seqs.at(-1) ?? reply.task.seq));
      const answered = deferred<any>();
      channel.push('nope', {}).receive('error', answered.resolve);
      assert.deepEqual(await within(answered.promise, 5000, 'push reply'), { reason: 'unknown event' });
      const before = srv.server.channels.stats().channels;
      channel.leave();
      await eventually(
        () => srv.server.channels.stats().channels === before - 1,
        5000,
        'leave reached the server',
      );
      assert.ok(
        logged.some((m) => m.includes('phx_join')),
        'the push log is captured',
      );
      assert.equal(
        logged.some((m) => m.startsWith('phoenix heartbeat')),
        false,
        `heartbeats sent: ${logged.join(' | ')}`,
      );
    } finally {
      socket.disconnect();
    }
  });
});
