// Scheduler: creates the tasks of the types that have a cron schedule (defineTask({ schedule })).
// Every node runs it; each tick's task carries the idempotency key `schedule:<type>:<tick>` under the
// schedule owner, so whichever nodes fire for a tick, the database keeps exactly one task of it.
// At start, a schedule with `backfill` creates the ticks missed since the last one any node
// created (at most MAX_BACKFILL); without it, missed ticks are skipped.
import type pg from 'pg';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, lastScheduledTick, scheduleKey } from '../db/index.ts';
import type { TaskService } from './service.ts';
import type { Schedule, TaskType } from './task-type.ts';

export interface SchedulerOptions {
  pool: pg.Pool;
  service: TaskService;
  types: TaskType[];
  /** The owner of the scheduled tasks. */
  owner: string;
  log: Logger;
  /** Told of each task this node created for a tick (tests, metrics). */
  onTick?: (type: string, tick: Date, created: boolean) => void;
}

/** Ticks created at most by one backfill, so a schedule of seconds after a month down stays sane. */
export const MAX_BACKFILL = 1000;
/** setTimeout holds at most about 24.8 days; a later tick is re-armed on the way. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #stopped = false;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(opts: SchedulerOptions) {
    this.#o = opts;
  }

  async start(): Promise<void> {
    for (const type of this.#o.types) {
      const schedule = type.schedule;
      if (!schedule) continue;
      let from = new Date();
      if (schedule.backfill) {
        const last = await lastScheduledTick(this.#o.pool, this.#o.owner, type.name);
        if (last) from = await this.#backfill(type.name, schedule, last, from);
      }
      this.#arm(type.name, schedule, from);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    await Promise.allSettled([...this.#pending]);
  }

  /** Creates the ticks after `last` up to `now`; returns where the live schedule takes over. */
  async #backfill(type: string, schedule: Schedule, last: Date, now: Date): Promise<Date> {
    let tick = schedule.next(last);
    let created = 0;
    while (tick && tick <= now && created < MAX_BACKFILL) {
      await this.#create(type, schedule, tick);
      created += 1;
      tick = schedule.next(tick);
    }
    if (created) this.#o.log.info({ type, ticks: created }, 'schedule: created the ticks missed while down');
    return now;
  }

  #arm(type: string, schedule: Schedule, after: Date): void {
    if (this.#stopped) return;
    const tick = schedule.next(after);
    if (!tick) return;
    const wait = tick.getTime() - Date.now();
    if (wait > MAX_TIMER_MS) {
      const later = setTimeout(() => this.#arm(type, schedule, after), MAX_TIMER_MS);
      later.unref();
      this.#timers.set(type, later);
      return;
    }
    const timer = setTimeout(
      () => {
        const done = this.#fire(type, schedule, tick);
        this.#pending.add(done);
        void done.finally(() => this.#pending.delete(done));
        this.#arm(type, schedule, tick);
      },
      Math.max(0, wait),
    );
    timer.unref();
    this.#timers.set(type, timer);
  }

  /** One tick: created here, or already by another node; retried while the database is away. */
  async #fire(type: string, schedule: Schedule, tick: Date): Promise<void> {
    for (let delay = 200; !this.#stopped; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.#create(type, schedule, tick);
        return;
      } catch (err) {
        if (!isDatabaseUnavailable(err)) {
          this.#o.log.error({ err, type, tick }, 'schedule: could not create the task of a tick');
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async #create(type: string, schedule: Schedule, tick: Date): Promise<void> {
    const { created } = await this.#o.service.create({
      owner: this.#o.owner,
      type,
      input: schedule.input,
      priority: schedule.priority,
      idempotencyKey: scheduleKey(type, tick),
    });
    this.#o.onTick?.(type, tick, created);
  }
}
