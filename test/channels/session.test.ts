// The session layer on its own (no sockets): FIFO across async joins, duplicate joins, lost
// state, slow-consumer conflation, rate limit. Uses the in-memory FakeTasks stand-in for
// TaskService.join; the conformance tests run the same paths against the real server.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import pino from 'pino';
import { Router } from '../../src/channels/router.ts';
import type { Serializer } from '../../src/channels/serializers/serializer.ts';
import { v2 } from '../../src/channels/serializers/v2.ts';
import {
  Counters,
  DrainWatch,
  Session,
  type SessionLimits,
  type Transport,
} from '../../src/channels/session.ts';
import { taskChannel } from '../../src/channels/task-channel.ts';
import { FakeTasks } from './fake-tasks.ts';
import { eventually } from './wire.ts';

class FakeTransport implements Transport {
  readonly serializer: Serializer = v2;
  frames: any[] = [];
  raw: string[] = [];
  backlog = 0;
  closedWith: { code: number; reason: string } | undefined;
  buffered(): number {
    return this.backlog;
  }
  write(frame: string): void {
    this.raw.push(frame);
    this.frames.push(JSON.parse(frame));
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }
}

const log = pino({ level: 'silent' });

function setup(limits: Partial<SessionLimits> = {}) {
  const tasks = new FakeTasks();
  const transport = new FakeTransport();
  const counters = new Counters();
  const drainWatch = new DrainWatch(5);
  const session = new Session({
    userId: 'alice',
    transport,
    router: new Router().add('task:*', taskChannel(tasks)),
    limits: {
      maxChannels: 100,
      softBufferBytes: 1000,
      hardBufferBytes: 100_000,
      maxMessagesPerSecond: 1000,
      ...limits,
    },
    counters,
    drainWatch,
    log,
  });
  const send = (frame: unknown[]) => {
    const [joinRef, ref, topic, event, payload] = frame as [
      string | null,
      string | null,
      unknown,
      string,
      unknown,
    ];
    session.receive({ joinRef, ref, topic, event, payload });
  };
  return { tasks, transport, counters, session, send, drainWatch };
}

describe('session', () => {
  test('a message sent right after a slow join is handled after it, never as unmatched topic', async () => {
    const { tasks, transport, send, session } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    tasks.joinDelayMs = 50;
    const T = `task:${id}`;
    send(['1', '1', T, 'phx_join', {}]);
    send(['1', '2', T, 'ping', {}]);
    send(['1', '3', T, 'phx_leave', {}]);
    await session.settled();
    assert.deepEqual(
      transport.frames.map((f) => [f[0], f[1], f[3], f[4].status ?? null]),
      [
        ['1', '1', 'phx_reply', 'ok'],
        ['1', '2', 'phx_reply', 'error'],
        ['1', '3', 'phx_reply', 'ok'],
        ['1', '1', 'phx_close', null],
      ],
    );
    assert.deepEqual(transport.frames[1][4].response, { reason: 'unknown event' });
  });

  test('heartbeats bypass the queue behind a slow join', async () => {
    const { tasks, transport, send, session } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    tasks.joinDelayMs = 50;
    send(['1', '1', `task:${id}`, 'phx_join', {}]);
    send([null, '2', 'phoenix', 'heartbeat', {}]);
    assert.deepEqual(transport.frames, [[null, '2', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]]);
    await session.settled();
    assert.equal(transport.frames[1][1], '1');
  });

  test('an event published during the join comes after the join reply', async () => {
    const { tasks, transport, send, session } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    const T = `task:${id}`;
    send(['1', '1', T, 'phx_join', {}]);
    // Events published while the join is in flight but before subscribing are not ours; once
    // subscribed, the reply is already out.
    tasks.emit(id, 'progress');
    await session.settled();
    tasks.emit(id, 'progress');
    assert.equal(transport.frames[0][3], 'phx_reply');
    assert.equal(transport.frames[0][4].response.task.seq, 2);
    assert.deepEqual(
      transport.frames.slice(1).map((f) => f[4].seq),
      [3],
    );
  });

  test('a duplicate join replaces the old channel: new reply, then phx_close of the old join_ref', async () => {
    const { tasks, transport, send, session, counters } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    const T = `task:${id}`;
    send(['1', '1', T, 'phx_join', {}]);
    send(['5', '5', T, 'phx_join', {}]);
    await session.settled();
    assert.deepEqual(
      transport.frames.map((f) => [f[0], f[1], f[3]]),
      [
        ['1', '1', 'phx_reply'],
        ['5', '5', 'phx_reply'],
        ['1', '1', 'phx_close'],
      ],
    );
    assert.equal(tasks.subscribers(id), 1);
    assert.equal(counters.channels, 1);
  });

  test('lost state sends phx_error with the join_ref twice and frees the topic', async () => {
    const { tasks, transport, send, session, counters } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    const T = `task:${id}`;
    send(['3', '3', T, 'phx_join', {}]);
    await session.settled();
    tasks.lose(id);
    assert.deepEqual(transport.frames.at(-1), ['3', '3', T, 'phx_error', { reason: 'channel_crash' }]);
    send(['3', '4', T, 'ping', {}]);
    assert.deepEqual(transport.frames.at(-1)[4].response, { reason: 'unmatched topic' });
    assert.equal(counters.channels, 0);
  });

  test('a join with a null join_ref: replies carry the join ref, phx_close and phx_error carry null', async () => {
    const { tasks, transport, send, session } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    const T = `task:${id}`;
    send([null, '3', T, 'phx_join', {}]);
    await session.settled();
    assert.deepEqual(transport.frames[0].slice(0, 3), [null, '3', T]);
    send([null, '4', T, 'ping', {}]);
    assert.deepEqual(transport.frames[1].slice(0, 2), ['3', '4']);
    send([null, '5', T, 'phx_leave', {}]);
    assert.deepEqual(transport.frames[2].slice(0, 2), ['3', '5']);
    assert.deepEqual(transport.frames[3], [null, null, T, 'phx_close', {}]);
  });

  test('a join whose lookup fails replies join crashed and leaves nothing behind', async () => {
    const { tasks, transport, send, session, counters } = setup();
    tasks.failJoins = true;
    send(['1', '1', `task:${randomUUID()}`, 'phx_join', {}]);
    await session.settled();
    assert.deepEqual(transport.frames[0][4], { status: 'error', response: { reason: 'join crashed' } });
    assert.equal(counters.channels, 0);
  });

  test('the socket closing during a join releases the subscription', async () => {
    const { tasks, send, session } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    tasks.joinDelayMs = 30;
    send(['1', '1', `task:${id}`, 'phx_join', {}]);
    session.end();
    await tasks.settled(); // the join subscribed after the end; the session must let go of it
    assert.equal(tasks.joins, 1, 'the join ran');
    assert.equal(tasks.subscribers(id), 0);
  });

  test('a congested subscriber gets the latest progress only, and every essential event', async () => {
    const { tasks, transport, send, session, counters } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    send(['1', '1', `task:${id}`, 'phx_join', {}]);
    await session.settled();
    transport.frames = [];
    transport.backlog = 5000; // over the soft limit
    for (let i = 0; i < 10; i++) tasks.emit(id, 'progress');
    assert.equal(transport.frames.length, 0, 'progress held back while congested');
    tasks.emit(id, 'retrying');
    // The essential event goes out at once, preceded by the newest held progress (seq order).
    assert.deepEqual(
      transport.frames.map((f) => [f[3], f[4].seq]),
      [
        ['progress', 11],
        ['retrying', 12],
      ],
    );
    for (let i = 0; i < 5; i++) tasks.emit(id, 'progress');
    transport.backlog = 0;
    await eventually(() => transport.frames.length === 3, 2000, 'drain');
    assert.deepEqual(transport.frames[2].slice(3, 4), ['progress']);
    assert.equal(transport.frames[2][4].seq, 17);
    assert.equal(counters.conflated, 13);
    // Every copy of an event is the same string, encoded once.
    const event = tasks.emit(id, 'completed');
    assert.equal(transport.raw.at(-1), event.frames.v2);
  });

  test('past the hard limit the socket is closed with 1011', async () => {
    const { tasks, transport, send, session } = setup();
    const id = randomUUID();
    tasks.add(id, 'alice');
    send(['1', '1', `task:${id}`, 'phx_join', {}]);
    await session.settled();
    transport.backlog = 200_000;
    tasks.emit(id, 'progress');
    assert.equal(transport.closedWith?.code, 1011);
    assert.equal(tasks.subscribers(id), 0);
    assert.ok(session.ended);
  });

  test('more inbound messages than the rate limit close the socket with 1008', () => {
    const { transport, send } = setup({ maxMessagesPerSecond: 10 });
    for (let i = 0; i < 20 && !transport.closedWith; i++) send([null, String(i), 'phoenix', 'heartbeat', {}]);
    assert.equal(transport.closedWith?.code, 1008);
    assert.equal(transport.frames.length, 10);
  });

  test('the channel limit refuses the next distinct join', async () => {
    const { tasks, transport, send, session } = setup({ maxChannels: 2 });
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) tasks.add(id, 'alice');
    ids.forEach((id, i) => {
      send([String(i), String(i), `task:${id}`, 'phx_join', {}]);
    });
    await session.settled();
    assert.deepEqual(transport.frames[2], [
      '2',
      '2',
      `task:${ids[2]}`,
      'phx_reply',
      { status: 'error', response: { reason: 'too many channels joined' } },
    ]);
    // Rejoining an already joined topic is a replacement, not a new channel.
    send(['9', '9', `task:${ids[0]}`, 'phx_join', {}]);
    await session.settled();
    assert.equal(transport.frames[3][4].status, 'ok');
  });
});
