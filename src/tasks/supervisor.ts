// Supervisor: keeps one task's fault away from every other task. An actor whose method throws
// is dropped, its subscribers get `lost` (phx_error on the wire, so Phoenix clients rejoin and
// get fresh state), and its attempt carries on with a fresh actor started from the database.
// A terminal actor lingers for late joiners, then is freed.
import type { Logger } from 'pino';
import type { TaskRecord } from '../db/index.ts';
import { isTerminal } from '../db/index.ts';
import type { ActorHooks, TaskActor } from './actor.ts';
import type { Registry } from './registry.ts';

export interface SupervisorOptions {
  lingerMs: number;
  log: Logger;
  load: (id: string) => Promise<TaskRecord | null>;
  /** Told when an actor has unsaved progress. */
  dirty: (actor: TaskActor) => void;
}

export class Supervisor implements ActorHooks {
  readonly #opts: SupervisorOptions;
  registry!: Registry;
  restarts = 0;

  constructor(opts: SupervisorOptions) {
    this.#opts = opts;
  }

  dirty(actor: TaskActor): void {
    this.#opts.dirty(actor);
  }

  terminal(actor: TaskActor): void {
    this.#scheduleStop(actor);
  }

  /** Starts the linger clock for an actor that holds a finished task. */
  #scheduleStop(actor: TaskActor): void {
    clearTimeout(actor.lingerTimer);
    if (this.#opts.lingerMs === 0) {
      this.stop(actor);
      return;
    }
    actor.lingerTimer = setTimeout(() => this.stop(actor), this.#opts.lingerMs);
    actor.lingerTimer.unref();
  }

  /** Frees a finished actor. Its subscribers stay joined on their sockets; nothing more will come. */
  stop(actor: TaskActor): void {
    clearTimeout(actor.lingerTimer);
    actor.stopped = true;
    actor.hub.release();
    this.registry.remove(actor);
  }

  /** Called for actors loaded for a join: finished ones linger, then go. */
  adopted(actor: TaskActor): void {
    if (isTerminal(actor.state.status) && !actor.lingerTimer) this.#scheduleStop(actor);
  }

  /** Frees an actor nobody needs any more: no subscribers, no attempt here, not lingering. */
  maybeRelease(actor: TaskActor): void {
    if (actor.hub.subscribers.size === 0 && !actor.attempt && !actor.lingerTimer) {
      actor.stopped = true;
      this.registry.remove(actor);
    }
  }

  crashed(actor: TaskActor, err: unknown): void {
    if (actor.stopped) return;
    this.restarts += 1;
    this.#opts.log.error(
      { err, task_id: actor.id },
      'task actor crashed; restarting it from its last saved state',
    );
    actor.stopped = true;
    clearTimeout(actor.lingerTimer);
    this.registry.remove(actor);
    actor.hub.lose();
    const attempt = actor.attempt;
    const seq = actor.state.seq;
    if (!attempt) return; // nothing runs here: the next lookup loads it afresh
    this.#opts
      .load(actor.id)
      .then((record) => {
        if (!record || attempt.signal.aborted) return;
        const fresh = this.registry.adopt({ ...record, seq: Math.max(record.seq, seq) });
        fresh.attempt = attempt;
      })
      .catch((loadErr: unknown) =>
        this.#opts.log.error({ err: loadErr, task_id: actor.id }, 'actor restart failed'),
      );
  }

  /** Kills an actor as if it had crashed (operators and tests). */
  kill(taskId: string): boolean {
    const actor = this.registry.get(taskId);
    if (!actor) return false;
    this.crashed(actor, new Error('killed'));
    return true;
  }
}
