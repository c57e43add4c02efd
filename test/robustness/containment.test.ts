// A handler's faults stay inside its task: a million progress updates do not starve another
// task; tokens in query strings never reach the logs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { redactUrl } from '../../src/server/logger.ts';
import { defineTask } from '../../src/tasks/index.ts';
import { joinTask } from '../helpers/join.ts';
import { logSink } from '../helpers/log-sink.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { recorder, waitFor } from '../helpers/wait.ts';

const MILLION = 1_000_000;
const spammer = defineTask({
  name: 'spammer',
  async run(ctx) {
    for (let i = 1; i <= MILLION; i++) {
      ctx.progress(i / MILLION);
      if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
    }
    return { updates: MILLION };
  },
});

let t: TestServer;
before(async () => {
  t = await startTestServer({ tasks: [spammer] });
});
after(() => t.stop());

test('a million progress updates in one task: another task keeps its latency', async () => {
  const token = await t.token('alice');
  const spam = await t.createTask(token, { type: 'spammer' });
  const watcher = recorder();
  const joined = await joinTask(t.service, 'alice', spam.task_id, watcher.sub);
  const joinedSeq = joined?.task.seq ?? 0;
  await waitFor(() => (t.server.registry.get(spam.task_id)?.state.progress ?? 0) > 0.01, 'the spam to start');
  const started = Date.now();
  const quick = await t.createTask(token, { steps: 5, interval_ms: 20 });
  const done = await t.waitForStatus(token, quick.task_id, ['completed'], 10_000);
  const took = Date.now() - started;
  assert.equal(done.status, 'completed');
  // 5 × 20 ms of work; the spam may slow it, but not by seconds.
  assert.ok(took < 3000, `the quick task finished in ${took} ms while the spam ran`);
  const spamDone = await t.waitForStatus(token, spam.task_id, ['completed'], 60_000);
  assert.equal(spamDone.progress, 1);
  // Every update after the join reached the subscriber, in order, none missing.
  const seqs = watcher.events.map((e) => e.payload.seq);
  assert.equal(seqs[0], joinedSeq + 1);
  assert.ok(
    seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1),
    'contiguous seqs',
  );
  assert.equal(watcher.events.at(-1)?.name, 'completed');
  assert.ok(seqs.length > MILLION / 2, `most of the million arrived after the join (${seqs.length})`);
});

test('tokens in query strings are redacted from request logs', async () => {
  const sink = logSink();
  const { createLogger } = await import('../../src/server/logger.ts');
  const log = createLogger({ logLevel: 'info', logPretty: false }, sink.stream);
  log.info(
    { req: { method: 'GET', url: '/socket/websocket?vsn=2.0.0&token=eyJSECRET.abc.def&x=1' } },
    'request',
  );
  log.info(
    { req: { method: 'GET', url: '/socket/longpoll?token=JWTSECRET&vsn=2.0.0&token=lp1.SESSION' } },
    'poll',
  );
  const text = sink.text();
  assert.doesNotMatch(text, /eyJSECRET|JWTSECRET|lp1\.SESSION/);
  assert.match(text, /token=\[REDACTED\]/);
  assert.equal(redactUrl('/a?b=1&token=x#f'), '/a?b=1&token=[REDACTED]#f');
});
