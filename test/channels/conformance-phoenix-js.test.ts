// Protocol spec §8, cases 8.31-8.38: the official `phoenix` npm client over WebSocket against the
// real server. Client timers are scaled down through its options (timeout, rejoinAfterMs) and the
// server's idle timeout through config, so the file runs in seconds.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { type Channel, Socket, type SocketConnectOption } from 'phoenix';
import pino from 'pino';
import { Tokens } from '../../src/auth/index.ts';
import { attachChannels } from '../../src/channels/index.ts';
import { taskTopic } from '../../src/contract/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { FakeTasks } from './fake-tasks.ts';
import { deferred, eventually, within } from './wire.ts';

let srv: TestServer;
let token: string;
const sockets: Socket[] = [];

/** A phoenix.js socket on the test server; heartbeats every 500 ms so the 1.5 s idle timeout never trips. */
function connect(opts: Partial<SocketConnectOption> = {}): Socket {
  const socket = new Socket(srv.wsUrl, { params: { token }, heartbeatIntervalMs: 500, ...opts });
  sockets.push(socket);
  socket.connect();
  return socket;
}

function join(channel: Channel, timeoutMs = 5000): Promise<any> {
  const { promise, resolve, reject } = deferred<any>();
  channel
    .join()
    .receive('ok', resolve)
    .receive('error', (e) => reject(new Error(`join refused: ${JSON.stringify(e)}`)))
    .receive('timeout', () => reject(new Error('join timed out')));
  return within(promise, timeoutMs, `join ${channel.topic}`);
}

function opened(socket: Socket): Promise<void> {
  const { promise, resolve } = deferred();
  if (socket.isConnected()) resolve();
  else socket.onOpen(() => resolve());
  return within(promise, 5000, 'socket open');
}

before(async () => {
  srv = await startTestServer({ socketIdleTimeoutMs: 1500 });
  token = await srv.token('dana');
});

after(async () => {
  for (const s of sockets) s.disconnect();
  await srv?.stop();
});

describe('phoenix.js over WebSocket (8.31-8.38)', () => {
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.disconnect();
    // Each test starts from a server with no sockets, so counts are this test's own.
    await eventually(() => srv.server.channels.stats().sockets === 0, 5000, 'sockets closed');
  });

  test('8.31 connect and join fire receive("ok", {task}); progress arrives in increasing seq order', async () => {
    const task = await srv.createTask(token, { steps: 6, interval_ms: 30 });
    const socket = connect();
    const channel = socket.channel(`task:${task.task_id}`, {});
    const seqs: number[] = [];
    const done = deferred<any>();
    channel.on('progress', (p) => {
      seqs.push(p.seq);
    });
    channel.on('completed', done.resolve);
    const reply = await join(channel);
    assert.equal(reply.task.task_id, task.task_id);
    const completed = await within(done.promise, 10_000, 'completed');
    assert.ok(seqs.length > 0);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq order ${seqs}`);
    assert.ok(seqs.every((s) => s > reply.task.seq));
    assert.ok(completed.seq > seqs[seqs.length - 1]);
  });

  test('8.32 socket.ping calls back with a round-trip time', async () => {
    const socket = connect();
    await opened(socket);
    const rtt = deferred<number>();
    assert.equal(socket.ping(rtt.resolve), true);
    const ms = await within(rtt.promise, 3000, 'ping reply');
    assert.equal(typeof ms, 'number');
    assert.ok(ms >= 0 && ms < 1000);
  });

  test('8.33 a join refused as unauthorized is retried on the backoff; each retry is answered, nothing leaks', async () => {
    const before = srv.server.channels.stats().channels;
    // 1 s, 2 s, 5 s in phoenix.js, scaled down by 10.
    const socket = connect({ rejoinAfterMs: (tries) => [100, 200, 500][tries - 1] ?? 1000 });
    const channel = socket.channel('task:00000000-0000-4000-8000-000000000000', {});
    const errors: Array<{ at: number; reason: string }> = [];
    const third = deferred();
    channel.join().receive('error', (e: { reason: string }) => {
      errors.push({ at: Date.now(), reason: e.reason });
      if (errors.length === 4) third.resolve();
    });
    await within(third.promise, 5000, 'four join answers');
    channel.leave();
    assert.ok(errors.every((e) => e.reason === 'unauthorized'));
    const gaps = errors.slice(1).map((e, i) => e.at - errors[i].at);
    assert.ok(gaps[0] >= 90 && gaps[1] >= 190 && gaps[2] >= 490, `backoff gaps ${gaps}`);
    assert.equal(srv.server.channels.stats().channels, before);
    assert.ok(socket.isConnected());
  });

  test('8.34 a server close with 1001 makes the client reconnect within about 1 s and rejoin with new join_refs and current state', async () => {
    const tasks = await Promise.all([0, 1].map(() => srv.createTask(token, { steps: 40, interval_ms: 75 })));
    const topics = tasks.map((t) => `task:${t.task_id}`);
    // No heartbeats: the server's idle timeout (1.5 s) forces the disconnect with 1001.
    const socket = connect({ heartbeatIntervalMs: 60_000 });
    try {
      const closes: Array<{ code: number; at: number }> = [];
      let reopenedAt = 0;
      socket.onClose((e) => {
        closes.push({ code: e.code, at: Date.now() });
      });
      socket.onOpen(() => {
        if (closes.length > 0 && reopenedAt === 0) reopenedAt = Date.now();
      });
      const joinRefs: Record<string, string[]> = {};
      const replies: Record<string, Array<{ task: any; lastSeqBefore: number }>> = {};
      const lastSeq: Record<string, number> = {};
      const rejoined = deferred();
      socket.onMessage((m: any) => {
        if (m.event === 'phx_reply' && m.payload.status === 'ok' && m.payload.response.task) {
          joinRefs[m.topic] = [...(joinRefs[m.topic] ?? []), m.join_ref];
          replies[m.topic] = replies[m.topic] ?? [];
          replies[m.topic].push({
            task: m.payload.response.task,
            lastSeqBefore: lastSeq[m.topic] ?? 0,
          });
          if (topics.every((t) => (joinRefs[t]?.length ?? 0) >= 2)) rejoined.resolve();
        } else if (m.payload?.seq) {
          lastSeq[m.topic] = m.payload.seq;
        }
      });
      for (const topic of topics) socket.channel(topic, {}).join();
      await within(rejoined.promise, 6000, 'rejoin after the forced close');
      assert.equal(closes[0].code, 1001);
      assert.ok(reopenedAt - closes[0].at < 1000, `reconnected after ${reopenedAt - closes[0].at} ms`);
      for (const topic of topics) {
        const [first, second] = joinRefs[topic];
        assert.notEqual(first, second, 'a rejoin has a fresh join_ref');
        const rejoin = replies[topic][1];
        assert.equal(`task:${rejoin.task.task_id}`, topic);
        assert.ok(rejoin.task.seq >= rejoin.lastSeqBefore, 'the rejoin reply carries the current state');
        assert.ok(['running', 'completed'].includes(rejoin.task.status));
      }
    } finally {
      socket.disconnect();
    }
  });

  test('8.35 taskwire never closes with 1000: close(1000) sends 1012 and the client reconnects', async () => {
    // phoenix.js <= 1.8.12 and SwiftPhoenixClient treat a server 1000 as "stay away" (spec 4.9).
    // (The installed phoenix@1.8.16 reconnects after any server close; older clients do not.)
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const secret = 'stand-in-secret-0123456789';
    const channels = attachChannels({
      server,
      tasks: new FakeTasks(),
      tokens: new Tokens(secret),
      config: {
        allowedOrigins: [],
        maxFrameBytes: 1 << 20,
        maxChannelsPerSocket: 100,
        socketIdleTimeoutMs: 60_000,
        socketSoftBufferBytes: 1 << 18,
        socketHardBufferBytes: 1 << 23,
        longPollWindowMs: 1000,
        maxSocketsPerUser: 10,
        maxMessagesPerSecond: 100,
      },
      log: pino({ level: 'silent' }),
    });
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/socket`;
    const client = new Socket(url, { params: { token: await new Tokens(secret).mint('erin') } });
    try {
      const codes: number[] = [];
      client.onClose((e) => {
        codes.push(e.code);
      });
      client.connect();
      await opened(client);
      let retries = 0;
      const closing = channels.close(1000, 'going');
      server.on('upgrade', (_req, s) => {
        retries += 1;
        s.destroy();
      });
      await within(closing, 3000, 'channels closed');
      await eventually(() => retries > 0, 3000, 'a reconnect attempt');
      assert.equal(codes[0], 1012);
      assert.equal(channels.stats().sockets, 0);
    } finally {
      client.disconnect();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('8.36 a push the server does not answer yields receive("timeout"); socket and channel stay healthy', async () => {
    const task = await srv.createTask(token, { steps: 1, interval_ms: 0 });
    // taskwire answers unknown events (8.25), so "no reply" is produced by stamping this push
    // with a stale join_ref, which the server drops silently (8.17).
    const socket = connect({
      encode: (msg: any, callback: (s: string) => void) => {
        const jr = msg.event === 'nope' ? '999' : msg.join_ref;
        callback(JSON.stringify([jr, msg.ref, msg.topic, msg.event, msg.payload]));
      },
    });
    const channel = socket.channel(`task:${task.task_id}`, {});
    await join(channel);
    const timedOut = deferred<number>();
    const started = Date.now();
    channel
      .push('nope', {}, 800)
      .receive('ok', () => timedOut.reject(new Error('unexpected ok')))
      .receive('error', () => timedOut.reject(new Error('unexpected error')))
      .receive('timeout', () => timedOut.resolve(Date.now() - started));
    const waited = await within(timedOut.promise, 3000, 'push timeout');
    assert.ok(waited >= 750, `timed out after ${waited} ms`);
    assert.equal(channel.state, 'joined');
    const rtt = deferred<number>();
    socket.ping(rtt.resolve);
    await within(rtt.promise, 2000, 'ping after the timeout');
    // Without the stale stamp, taskwire answers the same unknown event with an error reply.
    const answered = deferred<any>();
    channel.push('other', {}, 2000).receive('error', answered.resolve);
    assert.deepEqual(await within(answered.promise, 3000, 'unknown event reply'), {
      reason: 'unknown event',
    });
  });

  test("8.37 channel.leave() yields receive('ok') and onClose; the server's channel count drops by one", async () => {
    const task = await srv.createTask(token, { steps: 1, interval_ms: 0 });
    const topic = `task:${task.task_id}`;
    const socket = connect();
    const fromServer: any[] = [];
    const serverClosed = deferred();
    socket.onMessage((m: any) => {
      if (m.topic !== topic) return;
      fromServer.push(m);
      if (m.event === 'phx_close') serverClosed.resolve();
    });
    const channel = socket.channel(topic, {});
    await join(channel);
    const before = srv.server.channels.stats().channels;
    const left = deferred();
    const closed = deferred();
    channel.onClose(() => closed.resolve());
    const push = channel.leave().receive('ok', () => left.resolve());
    // phoenix.js fires ok/onClose as soon as the leave is sent; the server's answer follows.
    await within(
      Promise.all([left.promise, closed.promise, serverClosed.promise]),
      3000,
      'leave ok, onClose, phx_close',
    );
    const [reply, close] = fromServer.slice(-2);
    assert.equal(reply.event, 'phx_reply');
    assert.equal(reply.ref, (push as unknown as { ref: string }).ref);
    assert.deepEqual(reply.payload, { status: 'ok', response: {} });
    assert.equal(close.event, 'phx_close');
    assert.equal(srv.server.channels.stats().channels, before - 1);
  });

  test('8.38 a second Channel object for the same topic: the server sees phx_leave then phx_join; one subscription remains', async () => {
    const task = await srv.createTask(token, { steps: 1, interval_ms: 0 });
    const topic = `task:${task.task_id}`;
    const sent: string[] = [];
    const socket = connect({
      encode: (msg: any, callback: (s: string) => void) => {
        if (msg.topic === topic) sent.push(`${msg.event}:${msg.join_ref}`);
        callback(JSON.stringify([msg.join_ref, msg.ref, msg.topic, msg.event, msg.payload]));
      },
    });
    const first = socket.channel(topic, {});
    await join(first);
    const before = srv.server.channels.stats().channels;
    const firstClosed = deferred();
    first.onClose(() => firstClosed.resolve());
    const second = socket.channel(topic, {});
    const reply = await join(second);
    await within(firstClosed.promise, 3000, 'first channel closed');
    assert.equal(reply.task.task_id, task.task_id);
    assert.equal(sent.length, 3);
    assert.match(sent[0], /^phx_join:/);
    assert.equal(sent[1], `phx_leave:${sent[0].split(':')[1]}`, 'the old join_ref leaves first');
    assert.match(sent[2], /^phx_join:/);
    assert.equal(first.state, 'closed');
    assert.equal(second.state, 'joined');
    assert.equal(srv.server.channels.stats().channels, before);
    assert.equal(srv.server.pubsub.subscribers(taskTopic(task.task_id)), 1);
  });
});
