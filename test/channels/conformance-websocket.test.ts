// Protocol spec §8, cases 8.1-8.30: the WebSocket transport against the real server, with raw
// frames (the phoenix client cannot express these).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { binaryPush, eventually, type Frame, probe, Wire } from './wire.ts';

const OK_EMPTY = { status: 'ok', response: {} };
const UNMATCHED = { status: 'error', response: { reason: 'unmatched topic' } };

let srv: TestServer;
let alice: string;
let bob: string;
/** A finished task of alice's (its actor lingers): joinable, quiet. */
let T: string;
const open: Wire[] = [];

async function connect(query = `token=${alice}&vsn=2.0.0`, headers?: Record<string, string>): Promise<Wire> {
  const wire = await Wire.open(`${srv.wsUrl}/websocket?${query}`, { headers });
  open.push(wire);
  return wire;
}

/** A demo task of alice's, running for about steps x intervalMs. */
async function runningTask(steps: number, intervalMs: number): Promise<string> {
  const task = await srv.createTask(alice, { steps, interval_ms: intervalMs });
  return `task:${task.task_id}`;
}

/** Frames for `topic` until its terminal event. */
async function untilTerminal(wire: Wire, topic: string, timeoutMs = 10_000): Promise<Frame[]> {
  const frames: Frame[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = await wire.next(Math.max(1, deadline - Date.now()));
    if (f[2] !== topic) continue;
    frames.push(f);
    if (['completed', 'failed', 'cancelled'].includes(f[3])) return frames;
  }
}

before(async () => {
  srv = await startTestServer({ allowedOrigins: ['https://good.example', '//*.example.org'] });
  alice = await srv.token('alice');
  bob = await srv.token('bob');
  const task = await srv.createTask(alice, { steps: 1, interval_ms: 0 });
  T = `task:${task.task_id}`;
  // Finished before the tests start, so joining it yields a reply and no events.
  await srv.waitForStatus(alice, task.task_id, ['completed']);
});

after(async () => {
  for (const w of open) w.close();
  await srv?.stop();
});

describe('WebSocket connect (8.1-8.7)', () => {
  test('8.1 upgrade with a valid token and vsn=2.0.0 answers 101', async () => {
    const res = await probe(srv.url, `/socket/websocket?token=${alice}&vsn=2.0.0`);
    assert.equal(res.status, 101);
  });

  // Phoenix answers refusals with an empty body; taskwire's is api.md's error body (every error
  // response of the server has it), which no Phoenix client reads: the status is what counts.
  test('8.2 a missing or invalid token answers 403 (api.md error body), no 101', async () => {
    for (const query of [
      'vsn=2.0.0',
      'token=nope&vsn=2.0.0',
      `token=${alice}x&vsn=2.0.0`,
      'token=&vsn=2.0.0',
    ]) {
      const res = await probe(srv.url, `/socket/websocket?${query}`);
      assert.equal(res.status, 403, query);
      assert.equal(JSON.parse(res.body).error.code, 'forbidden', query);
    }
  });

  test('8.3 vsn=3.0.0 and vsn=abc are refused with 403 even with a valid token', async () => {
    for (const vsn of ['3.0.0', 'abc', '2.1.0']) {
      const res = await probe(srv.url, `/socket/websocket?token=${alice}&vsn=${vsn}`);
      assert.equal(res.status, 403, vsn);
      assert.equal(JSON.parse(res.body).error.code, 'forbidden');
    }
    const nested = await probe(srv.url, `/socket/websocket?token=${alice}&vsn[]=2.0.0`);
    assert.equal(nested.status, 403, 'vsn[] is not a plain string');
  });

  test('8.4 with vsn omitted the connection is V1 and replies have no join_ref', async () => {
    const wire = await connect(`token=${alice}`);
    wire.send({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '1' });
    const reply = await wire.next();
    assert.deepEqual(reply, { topic: 'phoenix', event: 'phx_reply', payload: OK_EMPTY, ref: '1' });
    assert.equal('join_ref' in reply, false);
    // A join over V1 works the same way, still without join_ref.
    wire.send({ topic: T, event: 'phx_join', payload: {}, ref: '2', join_ref: '2' });
    const joined = await wire.next();
    assert.equal(joined.payload.status, 'ok');
    assert.equal('join_ref' in joined, false);
  });

  test('8.5 vsn=2.0.1 is accepted as V2', async () => {
    const wire = await connect(`token=${alice}&vsn=2.0.1`);
    wire.send([null, '1', 'phoenix', 'heartbeat', {}]);
    assert.deepEqual(await wire.next(), [null, '1', 'phoenix', 'phx_reply', OK_EMPTY]);
  });

  test('8.6 a GET or POST on /socket/websocket with bad upgrade headers answers 400', async () => {
    const post = await probe(srv.url, `/socket/websocket?token=${alice}&vsn=2.0.0`, { method: 'POST' });
    assert.equal(post.status, 400);
    const badKey = await probe(srv.url, `/socket/websocket?token=${alice}&vsn=2.0.0`, {
      headers: { 'sec-websocket-key': 'short' },
    });
    assert.equal(badKey.status, 400);
    const badVersion = await probe(srv.url, `/socket/websocket?token=${alice}&vsn=2.0.0`, {
      headers: { 'sec-websocket-version': '8' },
    });
    assert.equal(badVersion.status, 400);
  });

  test('8.6 a plain GET or POST without upgrade headers answers 400', async () => {
    // These never reach the 'upgrade' event: the HTTP layer must route them.
    const get = await probe(srv.url, `/socket/websocket?token=${alice}&vsn=2.0.0`, { upgrade: false });
    assert.equal(get.status, 400);
    assert.equal(JSON.parse(get.body).error.code, 'bad_request', 'api.md error body');
    const post = await probe(srv.url, '/socket/websocket', { upgrade: false, method: 'POST' });
    assert.equal(post.status, 400);
    assert.equal(JSON.parse(post.body).error.code, 'bad_request');
  });

  test('8.7 an origin not allowed gets 403; no Origin header gets 101', async () => {
    const q = `/socket/websocket?token=${alice}&vsn=2.0.0`;
    assert.equal((await probe(srv.url, q, { headers: { origin: 'https://evil.example' } })).status, 403);
    assert.equal(
      (await probe(srv.url, q, { headers: { origin: 'https://good.example.evil.com' } })).status,
      403,
    );
    assert.equal((await probe(srv.url, q)).status, 101);
    assert.equal((await probe(srv.url, q, { headers: { origin: 'https://good.example' } })).status, 101);
    assert.equal((await probe(srv.url, q, { headers: { origin: 'https://app.example.org' } })).status, 101);
  });
});

describe('WebSocket V2 frames (8.8-8.25)', () => {
  test('8.8 a heartbeat with no channel joined returns exactly the ok reply', async () => {
    const wire = await connect();
    wire.send([null, '1', 'phoenix', 'heartbeat', {}]);
    assert.deepEqual(await wire.next(), [null, '1', 'phoenix', 'phx_reply', OK_EMPTY]);
  });

  test('8.9 the ref is echoed verbatim with its JSON type', async () => {
    const wire = await connect();
    wire.send([null, 'abc', 'phoenix', 'heartbeat', {}]);
    assert.equal((await wire.next())[1], 'abc');
    wire.send([null, '0', 'phoenix', 'heartbeat', {}]);
    const reply = await wire.next();
    assert.equal(reply[1], '0');
    assert.equal(typeof reply[1], 'string');
  });

  test('8.10 a join returns the ok reply with the task', async () => {
    const wire = await connect();
    wire.send(['1', '1', T, 'phx_join', {}]);
    const reply = await wire.next();
    assert.deepEqual(reply.slice(0, 4), ['1', '1', T, 'phx_reply']);
    assert.equal(reply[4].status, 'ok');
    assert.equal(reply[4].response.task.task_id, T.slice(5));
    assert.equal(typeof reply[4].response.task.seq, 'number');
  });

  test("8.11 a join to another user's or an unknown task id returns unauthorized, the same for both", async () => {
    const bobs = await srv.createTask(bob, { steps: 1, interval_ms: 0 });
    const wire = await connect();
    for (const topic of [`task:${bobs.task_id}`, `task:${randomUUID()}`, 'task:not-a-uuid']) {
      wire.send(['2', '2', topic, 'phx_join', {}]);
      assert.deepEqual(await wire.next(), [
        '2',
        '2',
        topic,
        'phx_reply',
        { status: 'error', response: { reason: 'unauthorized' } },
      ]);
    }
  });

  test('8.12 a join to a topic with no route returns unmatched topic with join_ref null', async () => {
    const wire = await connect();
    wire.send(['3', '3', 'nosuch:topic', 'phx_join', {}]);
    assert.deepEqual(await wire.next(), [null, '3', 'nosuch:topic', 'phx_reply', UNMATCHED]);
  });

  test('8.13 an event to a topic not joined returns unmatched topic with join_ref null', async () => {
    const wire = await connect();
    wire.send(['9', '4', T, 'ping', {}]);
    assert.deepEqual(await wire.next(), [null, '4', T, 'phx_reply', UNMATCHED]);
  });

  test('8.14 leave of a joined topic replies ok then phx_close', async () => {
    const wire = await connect();
    assert.equal((await wire.call(['1', '1', T, 'phx_join', {}]))[4].status, 'ok');
    wire.send(['1', '2', T, 'phx_leave', {}]);
    assert.deepEqual(await wire.next(), ['1', '2', T, 'phx_reply', OK_EMPTY]);
    assert.deepEqual(await wire.next(), ['1', '1', T, 'phx_close', {}]);
  });

  test('8.15 after a leave an event to the topic returns unmatched topic', async () => {
    const wire = await connect();
    await wire.call(['1', '1', T, 'phx_join', {}]);
    await wire.call(['1', '2', T, 'phx_leave', {}]);
    assert.deepEqual(await wire.next(), ['1', '1', T, 'phx_close', {}]);
    wire.send(['1', '3', T, 'ping', {}]);
    assert.deepEqual(await wire.next(), [null, '3', T, 'phx_reply', UNMATCHED]);
  });

  test('8.16 leave of a topic never joined replies ok with refs echoed and no phx_close', async () => {
    const wire = await connect();
    wire.send(['7', '8', T, 'phx_leave', {}]);
    assert.deepEqual(await wire.next(), ['7', '8', T, 'phx_reply', OK_EMPTY]);
    await wire.none(500);
  });

  test('8.17 an event with a stale join_ref produces no frame', async () => {
    const wire = await connect();
    await wire.call(['1', '1', T, 'phx_join', {}]);
    wire.send(['999', '2', T, 'ping', {}]);
    await wire.none(500);
  });

  test('8.18 a phx_leave with a stale join_ref produces no frame and the channel stays joined', async () => {
    const wire = await connect();
    await wire.call(['1', '1', T, 'phx_join', {}]);
    wire.send(['999', '2', T, 'phx_leave', {}]);
    await wire.none(500);
    const reply = await wire.call(['1', '3', T, 'ping', {}]);
    assert.deepEqual(reply, [
      '1',
      '3',
      T,
      'phx_reply',
      { status: 'error', response: { reason: 'unknown event' } },
    ]);
  });

  test("8.19 an event with join_ref null is processed and the reply carries the channel's join_ref", async () => {
    const wire = await connect();
    await wire.call(['4', '4', T, 'phx_join', {}]);
    wire.send([null, '5', T, 'ping', {}]);
    assert.deepEqual(await wire.next(), [
      '4',
      '5',
      T,
      'phx_reply',
      { status: 'error', response: { reason: 'unknown event' } },
    ]);
  });

  test('8.20 joining again replies for the new join_ref then closes the old one', async () => {
    const topic = await runningTask(5, 100);
    const wire = await connect();
    assert.equal((await wire.call(['1', '1', topic, 'phx_join', {}]))[4].status, 'ok');
    wire.send(['5', '5', topic, 'phx_join', {}]);
    // Events may arrive between; the two frames of the rejoin come in this order.
    const lifecycle: Frame[] = [];
    while (lifecycle.length < 2) {
      const f = await wire.next();
      if (f[3] === 'phx_reply' || f[3] === 'phx_close') lifecycle.push(f);
    }
    assert.deepEqual(lifecycle[0].slice(0, 4), ['5', '5', topic, 'phx_reply']);
    assert.equal(lifecycle[0][4].status, 'ok');
    assert.deepEqual(lifecycle[1], ['1', '1', topic, 'phx_close', {}]);
    const later = await untilTerminal(wire, topic);
    for (const f of later) assert.ok(f[0] === null || f[0] === '5', JSON.stringify(f));
  });

  test('8.21 every server push is [JR|null, null, T, event, object] with no top-level response key', async () => {
    const topic = await runningTask(4, 20);
    const wire = await connect();
    await wire.call(['1', '1', topic, 'phx_join', {}]);
    const pushes = await untilTerminal(wire, topic);
    assert.ok(pushes.length >= 2);
    for (const f of pushes) {
      assert.equal(f.length, 5);
      assert.ok(f[0] === null || f[0] === '1');
      assert.equal(f[1], null);
      assert.equal(f[2], topic);
      assert.equal(typeof f[3], 'string');
      assert.ok(f[4] && typeof f[4] === 'object' && !Array.isArray(f[4]));
      assert.equal('response' in f[4], false);
    }
  });

  test("8.22 no event for T arrives before that join's reply, and none is missed or doubled", async () => {
    const topic = await runningTask(150, 5);
    for (let i = 0; i < 6; i++) {
      const wire = await connect();
      // Join while progress is being emitted.
      const ref = String(i + 1);
      wire.send([ref, ref, topic, 'phx_join', {}]);
      const first = await wire.next();
      assert.deepEqual(first.slice(0, 4), [ref, ref, topic, 'phx_reply'], 'the reply comes first');
      let seq = first[4].response.task.seq;
      if (['completed', 'failed'].includes(first[4].response.task.status)) break;
      for (let n = 0; n < 5; n++) {
        const f = await wire.next();
        if (f[2] !== topic) continue;
        assert.equal(f[4].seq, seq + 1, 'consecutive seq after the join state');
        seq = f[4].seq;
        if (f[3] === 'completed') break;
      }
      wire.close();
      await new Promise((r) => setTimeout(r, 30 * i));
    }
  });

  test('8.23 with two tasks on one socket each event arrives on its own topic', async () => {
    const [a, b] = await Promise.all([runningTask(4, 20), runningTask(4, 20)]);
    const wire = await connect();
    await wire.call(['1', '1', a, 'phx_join', {}]);
    await wire.call(['2', '2', b, 'phx_join', {}]);
    const done = new Set<string>();
    const counts: Record<string, number> = { [a]: 0, [b]: 0 };
    while (done.size < 2) {
      const f = await wire.next(10_000);
      if (f[3] === 'phx_reply') continue;
      assert.ok(f[2] === a || f[2] === b);
      assert.equal(`task:${f[4].task_id}`, f[2]);
      counts[f[2]] += 1;
      if (f[3] === 'completed') done.add(f[2]);
    }
    assert.ok(counts[a] >= 2 && counts[b] >= 2);
  });

  test('8.24 the 101st distinct join on one socket returns too many channels joined', async () => {
    const tasks = await Promise.all(
      Array.from({ length: 101 }, () => srv.createTask(alice, { steps: 1, interval_ms: 0 })),
    );
    const wire = await connect();
    for (let i = 0; i < 100; i++) {
      wire.send([String(i), String(i), `task:${tasks[i].task_id}`, 'phx_join', {}]);
    }
    let oks = 0;
    while (oks < 100) {
      const f = await wire.next(10_000);
      if (f[3] === 'phx_reply') {
        assert.equal(f[4].status, 'ok', JSON.stringify(f));
        oks += 1;
      }
    }
    const topic = `task:${tasks[100].task_id}`;
    const reply = await wire.call(['x', 'x', topic, 'phx_join', {}], 10_000);
    assert.deepEqual(reply, [
      'x',
      'x',
      topic,
      'phx_reply',
      { status: 'error', response: { reason: 'too many channels joined' } },
    ]);
  });

  test('8.25 an unknown event on a joined topic gets an error reply and the channel stays joined', async () => {
    const wire = await connect();
    await wire.call(['1', '1', T, 'phx_join', {}]);
    for (const ref of ['2', '3']) {
      assert.deepEqual(await wire.call(['1', ref, T, 'nope', {}]), [
        '1',
        ref,
        T,
        'phx_reply',
        { status: 'error', response: { reason: 'unknown event' } },
      ]);
    }
  });
});

describe('WebSocket malformed input (8.26-8.28)', () => {
  test('8.26 a text frame that is not JSON closes that connection with 1007; others are unaffected', async () => {
    const bystander = await connect();
    const wire = await connect();
    wire.send('not json');
    const { code } = await wire.waitClosed();
    assert.equal(code, 1007);
    assert.deepEqual(await bystander.call([null, '1', 'phoenix', 'heartbeat', {}]), [
      null,
      '1',
      'phoenix',
      'phx_reply',
      OK_EMPTY,
    ]);
    const fresh = await connect();
    assert.equal((await fresh.call([null, '1', 'phoenix', 'heartbeat', {}]))[4].status, 'ok');
  });

  test('8.27 a short array or a V1 object on a V2 socket closes the connection, not with 1000', async () => {
    for (const frame of ['["1","2"]', '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}']) {
      const wire = await connect();
      wire.send(frame);
      const { code } = await wire.waitClosed();
      assert.notEqual(code, 1000);
      assert.equal(code, 1007);
    }
  });

  test('8.28 a binary kind-0 push gets a text unmatched topic reply; the server never sends binary', async () => {
    const wire = await connect();
    wire.sendBinary(binaryPush('', '7', 'nosuch:x', 'e', Buffer.from('{}')));
    const raw = await wire.nextRaw();
    assert.equal(raw.binary, false);
    assert.deepEqual(JSON.parse(raw.data as string), [null, '7', 'nosuch:x', 'phx_reply', UNMATCHED]);
    // A binary join is routed like a text one, and answered in text.
    wire.sendBinary(binaryPush('8', '8', T, 'phx_join', Buffer.alloc(0)));
    const joined = await wire.nextRaw();
    assert.equal(joined.binary, false);
    assert.equal(JSON.parse(joined.data as string)[4].status, 'ok');
    // Other kinds are unsupported data.
    wire.sendBinary(binaryPush('', '9', 'nosuch:x', 'e', Buffer.alloc(0), 2));
    assert.equal((await wire.waitClosed()).code, 1003);
  });
});

describe('WebSocket idle timeout (8.29) and lost state (8.30)', () => {
  let idle: TestServer;
  let token: string;

  before(async () => {
    idle = await startTestServer({ socketIdleTimeoutMs: 1500 });
    token = await idle.token('carol');
  });
  after(async () => {
    await idle?.stop();
  });

  test('8.29 silence past the idle timeout closes with 1001; heartbeats keep the socket open', async () => {
    const url = `${idle.wsUrl}/websocket?token=${token}&vsn=2.0.0`;
    const silent = await Wire.open(url);
    const chatty = await Wire.open(url);
    open.push(silent, chatty);
    const started = Date.now();
    // Heartbeats at a third of the timeout (30 s of 60 s), for 1.5 x the timeout (90 s of 60 s).
    let ref = 0;
    while (Date.now() - started < 2400) {
      const reply = await chatty.call([null, String(++ref), 'phoenix', 'heartbeat', {}]);
      assert.equal(reply[4].status, 'ok');
      await new Promise((r) => setTimeout(r, 500));
    }
    const { code } = await silent.waitClosed(3000);
    assert.equal(code, 1001);
    assert.ok(silent.received.length === 0);
    assert.equal(chatty.closeInfo, undefined, 'the heartbeating socket is still open');
  });

  test('8.30 when the server loses a subscription the client gets phx_error and the topic is freed', async () => {
    // A task running on this node: its actor is the live state that the server loses.
    const task = await idle.createTask(token, { steps: 100, interval_ms: 50 });
    const topic = `task:${task.task_id}`;
    await eventually(() => idle.server.registry.has(task.task_id), 5000, 'the attempt to start');
    const wire = await Wire.open(`${idle.wsUrl}/websocket?token=${token}&vsn=2.0.0`);
    open.push(wire);
    assert.equal((await wire.call(['6', '6', topic, 'phx_join', {}]))[4].status, 'ok');
    assert.ok(idle.server.supervisor.kill(task.task_id), 'the actor was live');
    assert.deepEqual(await wire.until((f) => f[3] === 'phx_error'), [
      '6',
      '6',
      topic,
      'phx_error',
      { reason: 'channel_crash' },
    ]);
    assert.deepEqual(await wire.call(['6', '7', topic, 'ping', {}]), [
      null,
      '7',
      topic,
      'phx_reply',
      UNMATCHED,
    ]);
    // A rejoin gets the fresh state.
    const rejoin = await wire.call(['8', '8', topic, 'phx_join', {}]);
    assert.equal(rejoin[4].status, 'ok');
    assert.equal(rejoin[4].response.task.task_id, task.task_id);
  });
});
