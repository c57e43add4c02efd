// The behaviour every bus transport must show, as one suite each engine's test file runs against
// its transport (memory, postgres, nats, redis): fan-out, direct channels, order, sizes, packing,
// namespaces, stop, and forged frames. Nodes are transport instances inside this test process.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Logger } from 'pino';
import type { BusTransport } from '../../src/bus/transport.ts';
import { waitFor } from '../helpers/wait.ts';
import { jsonOfBytes, nextTurn, nodeChannel, type Recorder, recorder, testLogger } from './support.ts';

export interface EngineUnderTest {
  /** A transport of this engine on `namespace` (not started). */
  create(namespace: string, log: Logger): BusTransport;
  /** Puts raw engine-level data on a namespace's channel with the engine's own client. */
  inject(namespace: string, channel: string, data: string | Buffer): Promise<void>;
  /** The frame size above which the transport drops a frame, when the engine can carry a larger one. */
  oversized?: number;
  /** The engine carries bytes that are not UTF-8 (PostgreSQL's NOTIFY does not). */
  binary: boolean;
}

export interface Node {
  transport: BusTransport;
  rec: Recorder;
  direct: string;
}

export function namespace(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

/** Starts `n` nodes on one namespace, each subscribed to `all` and its own direct channel. */
export async function startNodes(
  engine: EngineUnderTest,
  n: number,
  ns = namespace(),
  log = testLogger().log,
): Promise<Node[]> {
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    const transport = engine.create(ns, log);
    const rec = recorder();
    const direct = nodeChannel(`${ns}-${i}`);
    await transport.start(['all', direct], rec.handlers);
    nodes.push({ transport, rec, direct });
  }
  return nodes;
}

export async function stopNodes(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.transport.stop()));
}

export function conformance(name: string, engine: () => EngineUnderTest): void {
  describe(`${name} transport conformance`, () => {
    test('a broadcast reaches every subscriber, the sender included, once and in order', async () => {
      const nodes = await startNodes(engine(), 3);
      try {
        const [a] = nodes;
        assert.equal(a.transport.connected, true);
        a.transport.publish('all', ['{"i":1}', '{"i":2}']);
        a.transport.publish('all', ['{"i":3}']);
        for (const n of nodes) await n.rec.until(() => n.rec.on('all').length >= 3, 'the broadcast');
        await nextTurn();
        for (const n of nodes) assert.deepEqual(n.rec.on('all'), ['{"i":1}', '{"i":2}', '{"i":3}']);
      } finally {
        await stopNodes(nodes);
      }
    });

    test('a direct channel reaches only its subscriber', async () => {
      const nodes = await startNodes(engine(), 3);
      try {
        const [a, b, c] = nodes;
        a.transport.publish(b.direct, ['{"to":"b"}']);
        await b.rec.until(() => b.rec.on(b.direct).length === 1, 'the direct message');
        // A later broadcast from the same publisher has reached everyone: the direct one would have too.
        a.transport.publish('all', ['"marker"']);
        for (const n of nodes) await n.rec.until(() => n.rec.on('all').length === 1, 'the marker');
        assert.deepEqual(b.rec.on(b.direct), ['{"to":"b"}']);
        assert.equal(a.rec.got.has(b.direct), false);
        assert.equal(c.rec.got.has(b.direct), false);
        assert.equal(c.rec.got.has(c.direct), false);
      } finally {
        await stopNodes(nodes);
      }
    });

    test("each publisher's 10,000 messages, published in bursts, arrive in order at every node", async () => {
      const nodes = await startNodes(engine(), 3);
      const N = 10_000;
      try {
        const publishers = nodes.slice(0, 2);
        await Promise.all(
          publishers.map(async (n, p) => {
            let i = 0;
            while (i < N) {
              // Bursts of uneven size and messages of uneven length, one burst per event-loop turn.
              const burst = 1 + ((i * 7919) % 700);
              for (let k = 0; k < burst && i < N; k++, i++) {
                const pad = 'x'.repeat((i * 31) % 300);
                n.transport.publish('all', [`{"p":${p},"i":${i},"pad":"${pad}"}`]);
              }
              await nextTurn();
            }
          }),
        );
        for (const n of nodes)
          await n.rec.until(() => n.rec.on('all').length >= 2 * N, `${2 * N} messages`, 60_000);
        const expected = Array.from({ length: N }, (_, i) => i);
        for (const n of nodes) {
          assert.equal(n.rec.on('all').length, 2 * N, 'none twice');
          for (let p = 0; p < 2; p++) {
            const seen = n.rec
              .on('all')
              .map((m) => JSON.parse(m))
              .filter((v) => v.p === p);
            assert.deepEqual(
              seen.map((v) => v.i),
              expected,
              `publisher ${p} in order`,
            );
          }
          const s = n.transport.stats();
          assert.equal(s.dropped, 0);
          assert.equal(s.gaps ?? 0, 0);
        }
      } finally {
        await stopNodes(nodes);
      }
    });

    test('a 1 MB message and a 7,999-byte multibyte message arrive intact, in order with small ones', async () => {
      const nodes = await startNodes(engine(), 2);
      try {
        const [a, b] = nodes;
        const big = jsonOfBytes(1_000_000, 1);
        const utf8 = jsonOfBytes(7_999, 2);
        const sent = ['"first"', big, '"between"', utf8, '"last"'];
        a.transport.publish(b.direct, sent);
        a.transport.publish(b.direct, [utf8, '"after"']);
        const want = [...sent, utf8, '"after"'];
        await b.rec.until(() => b.rec.on(b.direct).length >= want.length, 'the large messages', 30_000);
        const got = b.rec.on(b.direct);
        assert.equal(got.length, want.length);
        for (let i = 0; i < want.length; i++)
          assert.ok(got[i] === want[i], `message ${i} intact and in place`);
        assert.equal(b.transport.stats().dropped, 0);
      } finally {
        await stopNodes(nodes);
      }
    });

    test('many small messages published in one turn travel in few frames', async () => {
      const nodes = await startNodes(engine(), 2);
      try {
        const [a, b] = nodes;
        const before = a.transport.stats();
        for (let i = 0; i < 1000; i++) a.transport.publish('all', [`{"i":${i},"event":"progress","p":0.5}`]);
        await b.rec.until(() => b.rec.on('all').length === 1000, '1,000 messages');
        // A publisher counts a frame (and its bytes) once the engine has acknowledged it, which may
        // be after delivery; a burst leaves in chunks (the outbox's FLUSH_AT), acknowledged apart.
        const out = await waitFor(() => {
          const s = a.transport.stats();
          const done = s.messagesOut - before.messagesOut === 1000 && s.bytesOut - before.bytesOut > 30_000;
          return done ? s : undefined;
        }, 'the publisher to count its frames');
        const frames = out.framesOut - before.framesOut;
        assert.equal(out.messagesOut - before.messagesOut, 1000);
        assert.ok(frames >= 1 && frames <= 10, `1,000 messages in ${frames} frames`);
        const inb = b.transport.stats();
        assert.ok(inb.framesIn < inb.messagesIn, `frames in ${inb.framesIn} < messages in ${inb.messagesIn}`);
        assert.ok(out.bytesOut - before.bytesOut > 30_000, 'bytes are counted');
      } finally {
        await stopNodes(nodes);
      }
    });

    test('namespaces isolate clusters on one engine', async () => {
      const one = await startNodes(engine(), 1);
      const two = await startNodes(engine(), 1);
      try {
        const [a] = one;
        const [x] = two;
        a.transport.publish('all', ['"from one"']);
        await a.rec.until(() => a.rec.on('all').length === 1, 'own broadcast');
        x.transport.publish('all', ['"from two"']);
        await x.rec.until(() => x.rec.on('all').length === 1, 'own broadcast');
        a.transport.publish('all', ['"one again"']);
        await a.rec.until(() => a.rec.on('all').length === 2, 'own broadcast again');
        assert.deepEqual(a.rec.on('all'), ['"from one"', '"one again"']);
        assert.deepEqual(x.rec.on('all'), ['"from two"']);
      } finally {
        await stopNodes([...one, ...two]);
      }
    });

    test('stop() flushes what was published, is idempotent, and publish() after it is a no-op', async () => {
      const nodes = await startNodes(engine(), 2);
      try {
        const [a, b] = nodes;
        for (let i = 0; i < 100; i++) a.transport.publish(b.direct, [`{"i":${i}}`]);
        const first = a.transport.stop();
        const second = a.transport.stop();
        await Promise.all([first, second]);
        await a.transport.stop();
        assert.equal(a.transport.connected, false);
        assert.doesNotThrow(() => a.transport.publish('all', ['"late"']));
        await b.rec.until(() => b.rec.on(b.direct).length === 100, 'what was published before stop');
        assert.deepEqual(
          b.rec.on(b.direct),
          Array.from({ length: 100 }, (_, i) => `{"i":${i}}`),
        );
      } finally {
        await stopNodes(nodes);
      }
    });

    test('forged frames are dropped and counted, and the transport keeps working', async () => {
      const e = engine();
      const ns = namespace();
      const nodes = await startNodes(e, 2, ns);
      try {
        const [a, b] = nodes;
        const forged: Array<string | Buffer> = [
          'hello',
          '',
          'tw1 pubA 1 m 1',
          'tw2 pubA 1 m 1\n{}',
          'tw1 pubA 1 m 2\n{}',
          'tw1 pubA 0 m 1\n{}',
          'tw1 pub!A 1 m 1\n{}',
          'tw1 pubA 1 x 1\n{}',
          'tw1 pubA 1 m 1 2\n{}',
          'tw1 pubA 99999999999999999 m 1\n{}',
          '{"topic":"task:1","event":"progress"}',
          `tw1 ${'p'.repeat(200)} 1 m 1\n{}`,
          'tw1 pubB 1 p 1 2\nxx',
          'tw1 pubB 2 p 0 1\nxx',
          'tw1 pubD 1 r 1\nnothing.here',
          'tw1 pubE 1 r 1\nbad ref!',
        ];
        if (e.binary) {
          forged.push(Buffer.concat([Buffer.from('tw1 pubF 1 m 1\n'), Buffer.from([0xff, 0xfe, 0x22])]));
          forged.push(Buffer.from([0x00, 0x01, 0x02, 0x0a, 0xff]));
        }
        if (e.oversized) forged.push(`tw1 pubG 1 m 1\n"${'x'.repeat(e.oversized)}"`);
        for (const f of forged) await e.inject(ns, 'all', f);
        // Well-formed frames from a publisher no node knows are delivered (only the cluster layer
        // can judge messages); a replay is dropped, a jump in the counter is a gap.
        await e.inject(ns, 'all', 'tw1 pubC 5 m 1\n{"ok":1}');
        await e.inject(ns, 'all', 'tw1 pubC 5 m 1\n{"ok":1}');
        await e.inject(ns, 'all', 'tw1 pubC 9 m 2\n{"ok":2}\n{"ok":3}');
        a.transport.publish('all', ['"real"']);
        for (const n of nodes)
          await n.rec.until(() => n.rec.on('all').includes('"real"'), 'real traffic', 20_000);
        for (const n of nodes) {
          await n.rec.until(
            () => n.transport.stats().dropped >= forged.length + 1,
            'every forged frame counted',
          );
          assert.deepEqual(
            n.rec.on('all').filter((m) => m !== '"real"'),
            ['{"ok":1}', '{"ok":2}', '{"ok":3}'],
          );
          const s = n.transport.stats();
          assert.equal(s.dropped, forged.length + 1, 'each bad frame and the replay counted once');
          assert.equal(s.gaps, 3);
          assert.equal(n.transport.connected, true);
        }
        b.transport.publish(a.direct, ['"still fine"']);
        await a.rec.until(() => a.rec.on(a.direct).length === 1, 'traffic after the forged frames');
      } finally {
        await stopNodes(nodes);
      }
    });
  });
}
