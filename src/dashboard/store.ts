// Every task the dashboard knows, folded by seq from REST pages, join replies and live events,
// with listeners told at most once per animation frame however many events arrived (10,000 tasks
// updating stay smooth). Rows are mutated in place; `version` says something changed and
// `shape` that rows were added or removed (so a sort by a fixed key need not run again).
import type { TaskStatus } from '../contract/index.ts';

export interface Row {
  task_id: string;
  type: string;
  status: TaskStatus;
  progress: number;
  message: string | null;
  attempt: number;
  owner: string | null;
  /** Creation time, ms since the epoch (from the row, else from the UUIDv7 id). */
  inserted: number;
  /** Time of the last change, ms. */
  updated: number;
  seq: number;
}

/** A task or event payload: what the store reads of it. */
export interface TaskLike {
  task_id: string;
  type?: string;
  status?: TaskStatus;
  progress?: number;
  message?: string | null;
  attempt?: number;
  owner?: string;
  seq?: number;
  inserted_at?: string;
  updated_at?: string;
  at?: number;
}

/** The creation time a UUIDv7 carries in its first 48 bits. */
export function uuidTime(id: string): number {
  const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  return Number.isFinite(ms) ? ms : Date.now();
}

export class TaskStore {
  readonly rows = new Map<string, Row>();
  version = 0;
  shape = 0;
  readonly #listeners = new Set<() => void>();
  #frame = 0;
  #shapeChanged = false;

  /** Folds a task or an event in; older seqs than the row's are ignored. Returns the row. */
  apply(t: TaskLike): Row | undefined {
    if (typeof t.task_id !== 'string') return undefined;
    let row = this.rows.get(t.task_id);
    const seq = t.seq ?? 0;
    const updated = t.at ?? (t.updated_at ? Date.parse(t.updated_at) : Date.now());
    if (!row) {
      row = {
        task_id: t.task_id,
        type: t.type ?? '',
        status: t.status ?? 'queued',
        progress: t.progress ?? 0,
        message: t.message ?? null,
        attempt: t.attempt ?? 0,
        owner: t.owner ?? null,
        inserted: t.inserted_at ? Date.parse(t.inserted_at) : uuidTime(t.task_id),
        updated,
        seq,
      };
      this.rows.set(t.task_id, row);
      this.#shapeChanged = true;
    } else {
      if (seq <= row.seq && row.seq > 0) return row;
      if (t.type !== undefined) row.type = t.type;
      if (t.status !== undefined) row.status = t.status;
      if (t.progress !== undefined) row.progress = t.progress;
      if (t.message !== undefined) row.message = t.message;
      if (t.attempt !== undefined) row.attempt = t.attempt;
      if (t.owner !== undefined) row.owner = t.owner;
      if (t.inserted_at !== undefined) row.inserted = Date.parse(t.inserted_at);
      row.updated = updated;
      row.seq = seq;
    }
    this.#schedule();
    return row;
  }

  clear(): void {
    this.rows.clear();
    this.#shapeChanged = true;
    this.#schedule();
  }

  /** Called once per animation frame after changes; returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #schedule(): void {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.version += 1;
      if (this.#shapeChanged) this.shape += 1;
      this.#shapeChanged = false;
      for (const listener of this.#listeners) listener();
    });
  }
}
