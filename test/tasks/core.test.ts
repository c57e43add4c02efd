// The tasks core without a database: the actor keeps its state behind its methods and publishes
// each change once, on the topics someone listens to; the registry maps ids to the running
// attempts' actors; the supervisor starts actors and replaces one that crashes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { PubSub, type TopicEvent } from '../../src/bus/index.ts';
import { ADMIN_TOPIC, taskTopic, userTopic } from '../../src/contract/index.ts';
import type { TaskRecord } from '../../src/db/index.ts';
import { Registry, Supervisor, TaskActor, TaskFeed } from '../../src/tasks/index.ts';
import { taskFixture } from '../helpers/task-fixture.ts';
import { waitFor } from '../helpers/wait.ts';

const log = pino({ level: 'silent' });
const LIMITS = { chunkBytes: 1000, maxChunks: 5, maxBytes: 2000 };
const ID = '01900000-0000-7000-8000-00000000000a';

function record(over: Partial<TaskRecord> = {}): TaskRecord {
  return { ...taskFixture({ task_id: ID, node: 'n1' }), owner: 'alice', ...over };
}

/** A PubSub with a recorder on each of the task's topics. */
function topics() {
  const pubsub = new PubSub({ log });
  const seen: Record<string, TopicEvent[]> = {};
  const listen = (topic: string) => {
    seen[topic] = [];
    void pubsub.subscribe(topic, { deliver: (e) => seen[topic].push(e), lost: () => {} });
  };
  return { pubsub, feed: new TaskFeed(pubsub), seen, listen };
}

function actorWith(feed: TaskFeed, over: Partial<TaskRecord> = {}) {
  const dirty: TaskActor[] = [];
  const crashes: unknown[] = [];
  const actor = new TaskActor(
    record(over),
    new AbortController(),
    feed,
    { dirty: (a) => dirty.push(a), outputDirty: () => {}, crashed: (_a, err) => crashes.push(err) },
    LIMITS,
  );
  return { actor, dirty, crashes };
}

describe('TaskActor', () => {
  test('start announces the claimed state; progress bumps seq by one, clamps, never goes back', () => {
    const { feed, seen, listen } = topics();
    listen(taskTopic(ID));
    const { actor, dirty } = actorWith(feed);
    actor.start();
    actor.progress(0.5, 'half');
    actor.progress(0.2); // backwards: kept at 0.5
    actor.progress(7); // clamped to 1
    actor.progress(Number.NaN); // ignored value, still an event
    const events = seen[taskTopic(ID)];
    assert.deepEqual(
      events.map((e) => [e.name, e.seq, e.payload.progress, e.class]),
      [
        ['started', 1, 0, 'always'],
        ['progress', 2, 0.5, 'latest'],
        ['progress', 3, 0.5, 'latest'],
        ['progress', 4, 1, 'latest'],
        ['progress', 5, 1, 'latest'],
      ],
    );
    assert.equal(events[1].payload.message, 'half');
    assert.equal(events[1].payload.type, 'demo');
    assert.equal(dirty.length, 4);
    assert.equal(actor.seq, 5);
  });

  test('its state is a copy: changing what a reader got changes nothing', () => {
    const { feed } = topics();
    const { actor } = actorWith(feed);
    const state = actor.state;
    state.progress = 0.9;
    state.seq = 99;
    assert.equal(actor.state.progress, 0);
    assert.equal(actor.seq, 1);
    const task = actor.task;
    actor.output('a chunk');
    assert.deepEqual(task.output, { start: 0, next: 0 }, 'a state handed out does not move with the actor');
    assert.deepEqual(actor.task.output, { start: 0, next: 1 });
    assert.equal('owner' in actor.task, false, 'the public shape has no owner');
  });

  test('after beginEnd no progress is accepted; end folds the persisted row and announces it once', () => {
    const { feed, seen, listen } = topics();
    listen(taskTopic(ID));
    const { actor } = actorWith(feed);
    actor.progress(0.4);
    const pending = actor.beginEnd();
    assert.deepEqual(pending, { seq: 3, progress: 0.4, message: null });
    actor.progress(0.9);
    actor.end('completed', record({ status: 'completed', progress: 1, seq: 3, result: 42 }), { result: 42 });
    actor.end('completed', record({ status: 'completed', progress: 1, seq: 4 }), { result: 42 });
    const names = seen[taskTopic(ID)].map((e) => [e.name, e.seq]);
    assert.deepEqual(names, [
      ['progress', 2],
      ['completed', 3],
    ]);
    assert.equal(seen[taskTopic(ID)][1].payload.result, 42);
    assert.equal(actor.state.status, 'completed');
    assert.equal(actor.stopped, true);
  });

  test('snapshots: one pending per change, none after it was saved, checkpoints per tenth', () => {
    const { feed } = topics();
    const { actor } = actorWith(feed);
    assert.equal(actor.pendingSnapshot(), null, 'nothing new since the claim');
    actor.progress(0.05);
    const first = actor.pendingSnapshot();
    assert.equal(first?.seq, 2);
    assert.equal(first?.checkpoint, false);
    actor.snapshotSaved(first!);
    assert.equal(actor.pendingSnapshot(), null);
    actor.progress(0.15);
    const second = actor.pendingSnapshot();
    assert.equal(second?.checkpoint, true, 'crossed a tenth');
    actor.snapshotSaved(second!);
    actor.progress(0.18);
    assert.equal(actor.pendingSnapshot()?.checkpoint, false, 'same tenth as the last checkpoint');
  });

  test('a change that throws goes to the crash hook, not to the caller', () => {
    const pubsub = new PubSub({ log });
    void pubsub.subscribe(taskTopic(ID), {
      deliver: () => {
        throw new Error('a subscriber fault stays in the hub');
      },
      lost: () => {},
    });
    const feed = new TaskFeed(pubsub);
    const broken = new TaskFeed(pubsub);
    (broken as unknown as { event: () => void }).event = () => {
      throw new Error('feed down');
    };
    const { actor: fine, crashes: none } = actorWith(feed);
    fine.progress(0.5);
    assert.equal(none.length, 0, 'a throwing subscriber is dropped by the hub, the actor goes on');
    const { actor, crashes } = actorWith(broken);
    assert.doesNotThrow(() => actor.progress(0.5));
    assert.equal(crashes.length, 1);
  });
});

describe('TaskFeed', () => {
  test('events go only to topics with listeners; the admin copy names the owner', () => {
    const { pubsub, feed, seen, listen } = topics();
    const s = record({ seq: 7 });
    feed.event(s, 'progress');
    assert.deepEqual(pubsub.topics(), [], 'nobody listens: nothing is built');
    listen(userTopic('alice'));
    listen(ADMIN_TOPIC);
    feed.event(s, 'progress');
    assert.equal(seen[userTopic('alice')].length, 1);
    assert.equal(seen[userTopic('alice')][0].key, ID, 'a user topic conflates per task');
    assert.equal(seen[userTopic('alice')][0].payload.owner, undefined);
    assert.equal(seen[ADMIN_TOPIC][0].payload.owner, 'alice');
    feed.created(record({ status: 'queued', seq: 0 }));
    assert.equal(seen[userTopic('alice')][1].name, 'created');
    assert.equal(seen[userTopic('alice')][1].payload.task_id, ID);
    assert.equal(seen[userTopic('alice')][1].class, 'always');
  });
});

describe('Registry and Supervisor', () => {
  test('the registry forgets an actor only when it is still the registered one', () => {
    const { feed } = topics();
    const registry = new Registry();
    const a = actorWith(feed).actor;
    const b = actorWith(feed).actor;
    registry.register(a);
    registry.register(b);
    registry.unregister(a);
    assert.equal(registry.get(ID), b);
    registry.unregister(b);
    assert.equal(registry.size, 0);
  });

  test('a created row is remembered only while no attempt of it started here, and only at its epoch', () => {
    const { feed } = topics();
    const registry = new Registry();
    const row = record({ status: 'queued', seq: 0 });
    // The create's reply came after the queue's wake-up: the attempt registered first wins.
    registry.expectCreated(ID);
    const actor = actorWith(feed).actor;
    registry.register(actor);
    registry.rememberCreated(row, 100, 0);
    assert.equal(registry.created(ID, 0), undefined, 'not remembered once an attempt started');
    registry.unregister(actor);
    // The usual order: remembered, then answered, then forgotten when the attempt registers.
    registry.expectCreated(ID);
    registry.rememberCreated(row, 100, 0);
    assert.equal(registry.created(ID, 1), undefined, 'another epoch: a peer was seen since');
    registry.expectCreated(ID);
    registry.rememberCreated(row, 100, 0);
    assert.equal(registry.created(ID, 0), row);
    registry.register(actorWith(feed).actor);
    assert.equal(registry.created(ID, 0), undefined);
    // Not expected (created elsewhere, or before), not remembered; bounded by bytes.
    registry.rememberCreated(record({ task_id: 'other' }), 100, 0);
    assert.equal(registry.created('other', 0), undefined);
    registry.expectCreated('big');
    registry.rememberCreated(record({ task_id: 'big' }), 64 * 1024 * 1024, 0);
    assert.equal(registry.createdSize, 0);
  });

  test('a crashed actor: local subscribers are lost, a fresh actor takes over from the row with seq never lower', async () => {
    const { feed } = topics();
    const registry = new Registry();
    const lost: string[] = [];
    const supervisor = new Supervisor({
      registry,
      feed,
      log,
      load: async () => record({ seq: 3, progress: 0.3 }),
      dirty: () => {},
      outputDirty: () => {},
      outputLimits: LIMITS,
      lost: (id) => lost.push(id),
    });
    const attempt = new AbortController();
    const first = supervisor.start(record(), attempt);
    first.progress(0.5);
    first.progress(0.6);
    first.progress(0.7); // seq 4: newer than the row's 3
    assert.equal(supervisor.kill(ID), true);
    assert.deepEqual(lost, [ID]);
    assert.equal(first.stopped, true);
    const fresh = await waitFor(() => registry.get(ID), 'the restarted actor');
    assert.notEqual(fresh, first);
    assert.equal(fresh.attempt, attempt, 'the attempt carries on');
    assert.equal(fresh.seq, 4, 'seq is the higher of the row and the crashed actor');
    assert.equal(supervisor.restarts, 1);
  });

  test('no restart for an attempt that ended or was aborted meanwhile', async () => {
    const { feed } = topics();
    const registry = new Registry();
    let loads = 0;
    const supervisor = new Supervisor({
      registry,
      feed,
      log,
      load: async () => {
        loads += 1;
        return record({ status: 'completed' });
      },
      dirty: () => {},
      outputDirty: () => {},
      outputLimits: LIMITS,
      lost: () => {},
    });
    supervisor.start(record(), new AbortController());
    supervisor.kill(ID);
    await waitFor(() => loads === 1, 'the load');
    // The restart decision runs in the load's continuation (microtasks): one macrotask turn is past it.
    await new Promise((r) => setImmediate(r));
    assert.equal(registry.size, 0);
  });
});
