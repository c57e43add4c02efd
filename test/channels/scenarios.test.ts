// Whole-system scenarios of issue 3 against the real server: the seed's three tasks on one
// socket, a reconnect mid-task, a slow consumer, and hostile frames while others are served.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Socket } from 'phoenix';
import { taskTopic } from '../../src/contract/index.ts';
import { defineTask } from '../../src/tasks/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { deferred, eventually, type Frame, Wire, within } from './wire.ts';

const TERMINAL = ['completed', 'failed', 'cancelled'];
const wires: Wire[] = [];
const sockets: Socket[] = [];

function wsUrl(srv: TestServer, token: string): string {
  return `${srv.wsUrl}/websocket?token=${token}&vsn=2.0.0`;
}

async function openWire(srv: TestServer, token: string): Promise<Wire> {
  const wire = await Wire.open(wsUrl(srv, token));
  wires.push(wire);
  return wire;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Reads a task topic's frames to its terminal event, recording each event's delivery latency. */
async function follow(
  wire: Wire,
  topic: string,
  timeoutMs = 20_000,
): Promise<{ events: Frame[]; latencies: number[] }> {
  const events: Frame[] = [];
  const latencies: number[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const raw = await wire.nextRaw(Math.max(1, deadline - Date.now()));
    const f = JSON.parse(raw.data as string);
    if (f[2] !== topic || f[3] === 'phx_reply') continue;
    events.push(f);
    latencies.push(raw.at - f[4].at);
    if (TERMINAL.includes(f[3])) return { events, latencies };
  }
}

/**
 * Released by a test: the `burst` task waits for it, then reports `count` progress steps at full
 * speed, yielding every few steps so that a reader that does read keeps up even on a loaded machine.
 */
let release = deferred();
const burstTask = defineTask<{ count: number; message: string }>({
  name: 'burst',
  async run(ctx) {
    await release.promise;
    for (let i = 1; i <= ctx.input.count; i++) {
      ctx.progress(i / ctx.input.count, ctx.input.message);
      if (i % 5 === 0) await new Promise((r) => setImmediate(r));
    }
    return { count: ctx.input.count };
  },
});

let plain: TestServer; // idle timeout 1.5 s: forced disconnects
let slow: TestServer; // soft buffer above one burst turn: conflation only for a reader that stops
let tight: TestServer; // small hard buffer: disconnect of a reader that never reads

before(async () => {
  [plain, slow, tight] = await Promise.all([
    startTestServer({ socketIdleTimeoutMs: 1500 }),
    // The soft limit is far above what one loop turn of the burst writes (5 frames, 30 kB), so
    // only a reader that stops reading passes it.
    startTestServer({ config: { socketSoftBufferBytes: 256 * 1024 }, tasks: [burstTask] }),
    startTestServer({
      socketSoftBufferBytes: 1024,
      socketHardBufferBytes: 64 * 1024,
      maxMessagesPerSecond: 100_000,
    }),
  ]);
});

after(async () => {
  for (const s of sockets) s.disconnect();
  for (const w of wires) w.close();
  await Promise.all([plain?.stop(), slow?.stop(), tight?.stop()]);
});

describe('scenarios', () => {
  test("the seed's scenario: three tasks over HTTP, one socket, three joins, every event on its own topic", async () => {
    const token = await plain.token('seed');
    const tasks = await Promise.all(
      [0, 1, 2].map(() => plain.createTask(token, { steps: 5, interval_ms: 40 })),
    );
    const socket = new Socket(plain.wsUrl, { params: { token }, heartbeatIntervalMs: 500 });
    sockets.push(socket);
    socket.connect();
    const finished = tasks.map(() => deferred());
    const seen: Record<string, Array<{ event: string; seq: number }>> = {};
    tasks.forEach((task, i) => {
      const topic = `task:${task.task_id}`;
      const channel = socket.channel(topic, {});
      seen[task.task_id] = [];
      for (const event of ['started', 'progress', 'completed']) {
        channel.on(event, (p: any) => {
          assert.equal(p.task_id, task.task_id, `${event} on ${topic} names its own task`);
          seen[task.task_id].push({ event, seq: p.seq });
          if (event === 'completed') finished[i].resolve();
        });
      }
      channel.join();
    });
    await within(Promise.all(finished.map((f) => f.promise)), 15_000, 'all three tasks completed');
    for (const task of tasks) {
      const events = seen[task.task_id];
      assert.ok(events.filter((e) => e.event === 'progress').length >= 1);
      for (let i = 1; i < events.length; i++) assert.ok(events[i].seq > events[i - 1].seq);
    }
    socket.disconnect();
  });

  test('reconnect mid-task: after a server-forced 1001 the rejoin reply carries the current state and nothing after it is missed', async () => {
    const token = await plain.token('reconnect');
    const task = await plain.createTask(token, { steps: 40, interval_ms: 75 });
    const topic = `task:${task.task_id}`;
    // No heartbeats: the server closes the idle socket (1001) mid-task; phoenix.js reconnects.
    const socket = new Socket(plain.wsUrl, { params: { token }, heartbeatIntervalMs: 60_000 });
    sockets.push(socket);
    const closes: number[] = [];
    socket.onClose((e) => {
      closes.push(e.code);
    });
    /** Per join: the state in its reply, then the seqs of the events that followed it. */
    const joins: Array<{ seq: number; status: string; after: number[] }> = [];
    const done = deferred();
    socket.onMessage((m: any) => {
      if (m.topic !== topic) return;
      if (m.event === 'phx_reply' && m.payload.response?.task) {
        const t = m.payload.response.task;
        joins.push({ seq: t.seq, status: t.status, after: [] });
        if (joins.length >= 2 && TERMINAL.includes(t.status)) done.resolve();
      } else if (m.payload?.seq !== undefined) {
        joins.at(-1)?.after.push(m.payload.seq);
        if (joins.length >= 2 && TERMINAL.includes(m.event)) done.resolve();
      }
    });
    socket.connect();
    socket.channel(topic, {}).join();
    await within(done.promise, 15_000, 'terminal event after a reconnect');
    socket.disconnect();
    assert.equal(closes[0], 1001);
    assert.ok(joins.length >= 2, 'rejoined');
    const final = (await plain.api(token, 'GET', `/api/tasks/${task.task_id}`)).body;
    for (const [i, j] of joins.entries()) {
      // Each join's state is where the stream left off (or newer), and what follows it is gap-free.
      if (i > 0) assert.ok(j.seq >= (joins[i - 1].after.at(-1) ?? joins[i - 1].seq));
      let expected = j.seq + 1;
      for (const seq of j.after) {
        assert.equal(seq, expected, `join ${i}: events after the join state are consecutive`);
        expected += 1;
      }
    }
    const last = joins.at(-1)!;
    assert.equal(last.after.at(-1) ?? last.seq, final.seq, 'the stream reached the final state');
  });

  test("slow consumer: a paused reader does not raise others' latency, gets conflated progress and still gets the terminal event", async (t) => {
    const token = await slow.token('slowpoke');
    const steps = 3000;
    release = deferred();
    // About 6 kB a frame, 18 MB in all: far more than the kernel buffers of a paused reader
    // (4 MB send, a few hundred kB receive here) and the soft limit together.
    const task = await slow.createTask(token, { type: 'burst', count: steps, message: 'x'.repeat(6000) });
    const topic = `task:${task.task_id}`;
    const paused = await openWire(slow, token);
    const fast = await openWire(slow, token);
    const other = await openWire(slow, token);
    for (const w of [paused, fast])
      assert.equal((await w.call(['1', '1', topic, 'phx_join', {}]))[4].status, 'ok');
    paused.tcp!.pause();
    const followed = follow(fast, topic);
    release.resolve();
    // A third client measures heartbeat round trips meanwhile.
    const rtts: number[] = [];
    let running = true;
    const pinging = (async () => {
      for (let ref = 0; running; ref++) {
        const t0 = Date.now();
        await other.call([null, String(ref), 'phoenix', 'heartbeat', {}], 5000);
        rtts.push(Date.now() - t0);
        await new Promise((r) => setTimeout(r, 20)); // a ping every 20 ms: pacing the measurement
      }
    })();
    const { events, latencies } = await followed;
    running = false;
    await pinging;
    assert.equal(events.at(-1)[3], 'completed');
    assert.equal(
      events.filter((f) => f[3] === 'progress').length,
      steps,
      'the fast reader got every progress',
    );
    // Generous bounds: clients and server share one process, beside other test files.
    assert.ok(percentile(latencies, 99) < 500, `fast reader p99 latency ${percentile(latencies, 99)} ms`);
    assert.ok(percentile(rtts, 99) < 500, `heartbeat p99 ${percentile(rtts, 99)} ms`);
    assert.ok(slow.server.channels.stats().conflated > 0, 'progress was conflated for the paused reader');

    paused.tcp!.resume();
    const got = await follow(paused, topic);
    assert.equal(got.events.at(-1)[3], 'completed', 'the paused reader still got the terminal event');
    const progress = got.events.filter((f) => f[3] === 'progress');
    assert.ok(progress.length < steps, `conflated: ${progress.length} of ${steps}`);
    const seqs = got.events.map((f) => f[4].seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], 'seq order kept');
    assert.equal(paused.closeInfo, undefined, 'conflation, not disconnection');
    t.diagnostic(
      `fast p99 ${percentile(latencies, 99)} ms, heartbeat p99 ${percentile(rtts, 99)} ms, paused reader got ${progress.length} of ${steps} progress`,
    );
  });

  test('slow consumer past the hard limit: a reader that never reads is closed with 1011, others unaffected', async () => {
    const token = await tight.token('hoarder');
    const task = await tight.createTask(token, { steps: 1, interval_ms: 0, padding: 'y'.repeat(20_000) });
    const topic = `task:${task.task_id}`;
    const bystander = await openWire(tight, token);
    const hoarder = await openWire(tight, token);
    assert.equal((await hoarder.call(['1', '1', topic, 'phx_join', {}]))[4].status, 'ok');
    hoarder.tcp!.pause();
    // Each rejoin answers with the whole task (about 20 kB); the replies pile up unread. A rejoin
    // replaces the channel in one step (its subscription never lapses), so the topic losing its
    // last subscriber means the server cut the hoarder off.
    for (let i = 2; i < 1000; i++) hoarder.send([String(i), String(i), topic, 'phx_join', {}]);
    await eventually(
      () => tight.server.pubsub.subscribers(taskTopic(task.task_id)) === 0,
      10_000,
      'the hoarder was cut off',
    );
    hoarder.tcp!.resume();
    const { code } = await hoarder.waitClosed(10_000);
    assert.equal(code, 1011);
    assert.equal((await bystander.call([null, '1', 'phoenix', 'heartbeat', {}]))[4].status, 'ok');
  });

  test('bad frames: invalid JSON, wrong arity, wrong slot types, huge frames, hostile topics, a thousand joins; everyone else is served', async () => {
    const token = await slow.token('victim');
    const task = await slow.createTask(token, { steps: 30, interval_ms: 40 });
    const topic = `task:${task.task_id}`;
    const victim = await openWire(slow, token);
    assert.equal((await victim.call(['1', '1', topic, 'phx_join', {}]))[4].status, 'ok');
    const watched = follow(victim, topic);

    const attacker = await slow.token('mallory');
    const closesWith = async (frame: string | Buffer, code: number) => {
      const w = await openWire(slow, attacker);
      w.send(frame);
      assert.equal((await w.waitClosed()).code, code, `close code for ${String(frame).slice(0, 40)}`);
    };
    await closesWith('not json', 1007);
    await closesWith('{"unterminated": ', 1007);
    await closesWith('[]', 1007);
    await closesWith('["1"]', 1007);
    await closesWith('[null,"1","phoenix"]', 1007);
    await closesWith('"just a string"', 1007);
    await closesWith('[{},"1","phoenix","heartbeat",{}]', 1007);
    await closesWith('[null,["1"],"phoenix","heartbeat",{}]', 1007);
    await closesWith('[null,"1","phoenix",42,{}]', 1007);
    await closesWith(`[null,"1","phoenix","heartbeat",{"pad":"${'z'.repeat(2 * 1024 * 1024)}"}]`, 1009);

    // Slot types the protocol tolerates: numeric refs come back as numbers, odd payloads are ignored.
    const tolerant = await openWire(slow, attacker);
    assert.deepEqual(await tolerant.call([null, 7, 'phoenix', 'heartbeat', 'not an object']), [
      null,
      7,
      'phoenix',
      'phx_reply',
      { status: 'ok', response: {} },
    ]);
    assert.deepEqual((await tolerant.call([null, '2', 123, 'phx_join', {}]))[4].response, {
      reason: 'unmatched topic',
    });

    // Hostile topics: each gets the ordinary refusal, no crash, no leak.
    const hostile = [
      'task:../../etc/passwd',
      `task:${'a'.repeat(100_000)}`,
      `task:${randomUUID().toUpperCase()}`,
      `task:${randomUUID()}\u0000`,
      "task:' or 1=1 --",
      'task:',
      'task:__proto__',
      '__proto__',
      'constructor',
      'phoenix',
      'tâsk:ünïcode💥',
    ];
    for (const [i, t] of hostile.entries()) {
      const reply = await tolerant.call([String(i), `h${i}`, t, 'phx_join', {}]);
      assert.equal(reply[4].status, 'error', t.slice(0, 40));
      assert.ok(['unauthorized', 'unmatched topic'].includes(reply[4].response.reason));
    }
    assert.equal((await tolerant.call([null, 'hb', 'phoenix', 'heartbeat', {}]))[4].status, 'ok');

    // A thousand joins in one burst: the per-socket rate limit (200/s) closes the socket (1008).
    const flood = await openWire(slow, attacker);
    for (let i = 0; i < 1000; i++) flood.send([String(i), String(i), `task:${randomUUID()}`, 'phx_join', {}]);
    assert.equal((await flood.waitClosed(10_000)).code, 1008);
    const replies = flood.received.length;
    assert.ok(replies <= 200, `${replies} joins answered before the cut`);

    const { events, latencies } = await watched;
    assert.equal(events.at(-1)[3], 'completed');
    const seqs = events.map((f: Frame) => f[4].seq);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, 'the victim missed nothing');
    assert.ok(percentile(latencies, 99) < 1000, `victim p99 latency ${percentile(latencies, 99)} ms`);
    // The server still accepts and serves new clients, and nothing leaked.
    const fresh = await openWire(slow, token);
    assert.equal((await fresh.call(['1', '1', topic, 'phx_join', {}]))[4].status, 'ok');
    tolerant.close();
    await eventually(
      () => slow.server.pubsub.subscribers(taskTopic(task.task_id)) === 2,
      5000,
      'exactly the victim and the fresh client subscribed',
    );
  });
});
