// Property: no inbound frame, text or binary, crashes the protocol: decoders return a message or
// a refusal, and a live server answers every hostile frame by replying or closing that one
// connection (never with 1000), while other connections keep being served.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { v1, v2 } from '../../src/channels/index.ts';
import { taskTopic } from '../../src/contract/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../helpers/wait.ts';
import { fcParams } from './settings.ts';

/** Strings with what PostgreSQL can't store: NUL and lone surrogates (as JSON escapes on the wire). */
const hostileString = fc
  .tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\u0000', '\ud800', '\udc00', '\ude00\ud83d'))
  .map(([a, bad]) => a + bad);
const slot = fc.oneof(
  fc.string(),
  hostileString,
  hostileString.map((s) => `task:${s}`),
  fc.integer(),
  fc.constant(null),
  fc.boolean(),
  fc.object(),
  fc.array(fc.anything()),
);
const frameText = fc.oneof(
  fc.string(),
  fc.json(),
  fc.tuple(slot, slot, slot, slot, slot).map((a) => JSON.stringify(a)),
  fc
    .tuple(
      fc.option(fc.string()),
      fc.option(fc.string()),
      fc.oneof(fc.constant('phoenix'), fc.string()),
      fc.string(),
      fc.object(),
    )
    .map((a) => JSON.stringify(a)),
  fc.record({ topic: slot, event: slot, payload: slot, ref: slot }).map((o) => JSON.stringify(o)),
);

test('decoders never throw on any text or bytes', () => {
  fc.assert(
    fc.property(frameText, fc.uint8Array({ maxLength: 600 }), (text, bytes) => {
      for (const s of [v1, v2]) {
        const m = s.decode(text);
        if (m !== undefined) assert.equal(typeof m.event, 'string');
        const b = s.decodeBinary(bytes);
        assert.ok(b === undefined || b === 'unsupported' || typeof b.event === 'string');
      }
    }),
    fcParams,
  );
});

let t: TestServer;
let token: string;
let ownTask = '';
before(async () => {
  t = await startTestServer({ maxMessagesPerSecond: 100_000 });
  token = await t.token('fuzzer');
  // A running task, so joins subscribe to a live actor that a leak would keep hold of.
  ownTask = (await t.createTask(token, { steps: 1, interval_ms: 600_000 })).task_id;
  await t.waitForStatus(token, ownTask, ['running']);
});

/** Channel traffic that reaches real actors: joins (own task, unknown tasks), events, leaves. */
const channelFrame = fc
  .tuple(
    fc.constantFrom('phx_join', 'phx_leave', 'ping', 'heartbeat'),
    fc.oneof(fc.constant('own'), fc.uuid()),
    fc.integer({ min: 1, max: 5 }),
  )
  .map(([event, id, ref]) =>
    JSON.stringify([String(ref), String(ref), `task:${id === 'own' ? ownTask : id}`, event, {}]),
  );
after(() => t.stop());

function open(vsn = '2.0.0'): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${t.wsUrl}/websocket?token=${token}&vsn=${vsn}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Resolves once the server answered a leave sent after everything else, or closed the socket. */
async function barrier(ws: WebSocket, vsn: string, closed: Promise<number>): Promise<void> {
  if (ws.readyState !== WebSocket.OPEN) {
    await closed;
    return;
  }
  const ref = 'barrier';
  const topic = 'barrier:fuzz';
  ws.send(
    vsn === '1.0.0'
      ? JSON.stringify({ topic, event: 'phx_leave', payload: {}, ref })
      : JSON.stringify([null, ref, topic, 'phx_leave', {}]),
  );
  const replied = new Promise<void>((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const text = String(data);
      if (text.includes('"barrier"') && text.includes('phx_reply')) {
        ws.off('message', onMessage);
        resolve();
      }
    };
    ws.on('message', onMessage);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer to the barrier leave within 10 s')), 10_000);
  });
  try {
    await Promise.race([replied, closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A heartbeat on a fresh socket is answered: the server is alive and serving. */
async function serving(): Promise<void> {
  const ws = await open();
  try {
    const reply = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no heartbeat reply in 5 s')), 5000);
      ws.once('message', (d) => {
        clearTimeout(timer);
        resolve(String(d));
      });
      ws.send('[null,"hb","phoenix","heartbeat",{}]');
    });
    assert.deepEqual(JSON.parse(reply), [null, 'hb', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
  } finally {
    ws.close();
  }
}

test('hostile frames on a live socket: a reply or a non-1000 close, and the server keeps serving', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          frameText.map((s) => ({ text: s })),
          channelFrame.map((s) => ({ text: s })),
          fc.uint8Array({ maxLength: 300 }).map((b) => ({ bytes: b })),
        ),
        {
          minLength: 1,
          maxLength: 8,
        },
      ),
      fc.constantFrom('1.0.0', '2.0.0'),
      async (frames, vsn) => {
        const ws = await open(vsn);
        const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
        for (const f of frames) {
          if (ws.readyState !== WebSocket.OPEN) break;
          if ('text' in f) ws.send(f.text);
          else ws.send(f.bytes);
        }
        // A leave of a topic never joined is answered in order, after every frame before it: its
        // reply (or the close, if a frame made the server close) means the server has answered.
        await barrier(ws, vsn, closed);
        if (ws.readyState === WebSocket.OPEN) ws.close(4000);
        const code = await closed;
        assert.notEqual(code, 1000, 'the server never closes with 1000');
      },
    ),
    { ...fcParams, numRuns: Math.max(10, Math.floor(fcParams.numRuns / 3)) },
  );
  await serving();
  // Nothing stays behind: every socket, channel and actor of the hostile connections is gone.
  await waitFor(() => t.server.channels.stats().sockets === 0, 'every fuzz socket to be released', 10_000);
  assert.equal(t.server.channels.stats().channels, 0, 'no joined channel left');
  assert.equal(t.server.pubsub.subscribers(taskTopic(ownTask)), 0, 'no subscription left on the live task');
  assert.equal(t.server.registry.size, 1, 'no actor left but the running task');
});
