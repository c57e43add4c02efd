// Supervisor: starts the actor of each attempt and keeps one task's fault away from every other
// (the seed's DynamicSupervisor). An actor whose method throws is replaced by a fresh one started
// from the database (its attempt carries on), and the task's subscribers on this node are told
// (phx_error), so Phoenix clients rejoin and get the fresh state.
import type { Logger } from 'pino';
import type { TaskRecord } from '../db/index.ts';
import { type ActorHooks, type OutputLimits, type PendingOutput, TaskActor } from './actor.ts';
import type { TaskFeed } from './feed.ts';
import type { Registry } from './registry.ts';

export interface SupervisorOptions {
  registry: Registry;
  feed: TaskFeed;
  log: Logger;
  load: (id: string) => Promise<TaskRecord | null>;
  /** Told when an actor has unsaved progress. */
  dirty: (actor: TaskActor) => void;
  /** Told when an actor has unsaved output. */
  outputDirty: (actor: TaskActor) => void;
  outputLimits: OutputLimits;
  /** Told when an actor's state was lost, with its task id (its local subscribers must rejoin). */
  lost: (taskId: string) => void;
}

export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #hooks: ActorHooks;
  restarts = 0;

  constructor(opts: SupervisorOptions) {
    this.#o = opts;
    this.#hooks = {
      dirty: (actor) => opts.dirty(actor),
      outputDirty: (actor) => opts.outputDirty(actor),
      crashed: (actor, err) => this.#crashed(actor, err),
    };
  }

  /** The actor of a claimed attempt, registered for its task. */
  start(claimed: TaskRecord, attempt: AbortController, carried?: PendingOutput): TaskActor {
    const actor = new TaskActor(claimed, attempt, this.#o.feed, this.#hooks, this.#o.outputLimits, carried);
    this.#o.registry.register(actor);
    if (carried?.chunks.length) this.#o.outputDirty(actor);
    return actor;
  }

  /** The attempt is over: the actor goes. */
  release(actor: TaskActor): void {
    actor.stop();
    this.#o.registry.unregister(actor);
  }

  /** Drops the actor of an attempt that can no longer end here (fenced out): its subscribers rejoin. */
  evict(actor: TaskActor): void {
    this.release(actor);
    this.#o.lost(actor.id);
  }

  #crashed(actor: TaskActor, err: unknown): void {
    if (actor.stopped) return;
    this.restarts += 1;
    this.#o.log.error(
      { err, task_id: actor.id },
      'task actor crashed; restarting it from its last saved state',
    );
    const { attempt } = actor;
    const { seq, attempt: attemptNo } = actor.state;
    // Output already sent to clients but not yet saved goes on with the attempt: no index is reused.
    const output = actor.pendingOutput();
    this.evict(actor);
    this.#o
      .load(actor.id)
      .then((record) => {
        if (record?.status !== 'running' || record.attempt !== attemptNo) return;
        if (attempt.signal.aborted || this.#o.registry.has(actor.id)) return;
        this.start({ ...record, seq: Math.max(record.seq, seq) }, attempt, output);
      })
      .catch((loadErr: unknown) =>
        this.#o.log.error({ err: loadErr, task_id: actor.id }, 'actor restart failed'),
      );
  }

  /** Kills an actor as if it had crashed (operators and tests). */
  kill(taskId: string): boolean {
    const actor = this.#o.registry.get(taskId);
    if (!actor) return false;
    this.#crashed(actor, new Error('killed'));
    return true;
  }
}
