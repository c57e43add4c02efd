// The dashboard's live feed: ONE phoenix socket (the official client) joined to `admin:tasks`
// (admin tokens) or `user:<sub>`; every event is folded into the store by seq, `stats` events
// are handed on, and the connection's state ("live", "reconnecting") is told to the page. Each
// (re)join replies with the tasks in flight, and then `onJoined` lets the page catch up on what
// it missed (the first page of history, tasks that ended while away).
import { type Channel, Socket } from 'phoenix';
import type { Stats } from '../contract/index.ts';
import { ADMIN_TOPIC, userTopic } from '../contract/topics.ts';
import type { Session } from './auth.ts';
import type { TaskLike, TaskStore } from './store.ts';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting';

const EVENTS = ['created', 'started', 'progress', 'retrying', 'completed', 'failed', 'cancelled', 'retried'];

export interface LiveOptions {
  session: Session;
  store: TaskStore;
  onState: (state: ConnectionState) => void;
  onStats: (stats: Stats) => void;
  /** After every ok join (the first and each rejoin), with the tasks in flight it replied. */
  onJoined: (tasks: TaskLike[], rejoin: boolean) => void;
  /** Any task event (after the store has it): the page may refresh what depends on it. */
  onEvent?: (name: string, payload: TaskLike & Record<string, unknown>) => void;
  onRefused: (reason: string) => void;
}

export class Live {
  readonly #socket: Socket;
  readonly #channel: Channel;
  #state: ConnectionState = 'connecting';
  #joins = 0;

  constructor(o: LiveOptions) {
    this.#socket = new Socket('/socket', {
      params: () => ({ token: o.session.token }),
      reconnectAfterMs: (tries: number) => [200, 500, 1000, 2000][tries - 1] ?? 3000,
      rejoinAfterMs: (tries: number) => [200, 500, 1000][tries - 1] ?? 2000,
    });
    const setState = (state: ConnectionState) => {
      if (state === this.#state) return;
      this.#state = state;
      o.onState(state);
    };
    this.#socket.onClose(() => setState('reconnecting'));
    this.#socket.onError(() => setState('reconnecting'));
    const topic = o.session.admin ? ADMIN_TOPIC : userTopic(o.session.user);
    this.#channel = this.#socket.channel(topic, {});
    for (const name of EVENTS) {
      this.#channel.on(name, (payload: TaskLike & Record<string, unknown>) => {
        o.store.apply(payload);
        o.onEvent?.(name, payload);
      });
    }
    this.#channel.on('stats', (stats: Stats) => o.onStats(stats));
    this.#channel.onError(() => setState('reconnecting'));
    this.#channel
      .join()
      .receive('ok', (reply: { tasks?: TaskLike[] }) => {
        const tasks = reply.tasks ?? [];
        for (const t of tasks) o.store.apply(t);
        this.#joins += 1;
        setState('live');
        o.onJoined(tasks, this.#joins > 1);
      })
      .receive('error', (reply: { reason?: string }) => o.onRefused(reply.reason ?? 'refused'));
    this.#socket.connect();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  close(): void {
    this.#channel.leave();
    this.#socket.disconnect();
  }
}
