// The live task table: every task the store knows (newest first, finished ones kept), filtered by
// status, type, owner, time window and text, sorted by any column, paged back through history with
// the list route's keyset cursor, and virtualised (@tanstack/virtual-core) so that 10,000 rows
// updating cost what the ~30 visible ones do. "Follow live" off freezes the set of rows (their
// state stays live) and counts what is new. Each row: `data-task-id`, `data-status`, and its bar's
// `data-progress` (0..1).
import {
  elementScroll,
  observeElementOffset,
  observeElementRect,
  Virtualizer,
  type VirtualizerOptions,
} from '@tanstack/virtual-core';
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import { TASK_STATUSES } from '../../contract/task.ts';
import type { Api } from '../api.ts';
import type { Session } from '../auth.ts';
import { age, count, duration, percent, shortId } from '../format.ts';
import type { Row, TaskStore } from '../store.ts';

const ROW_HEIGHT = 34;
const PAGE = 100;
const TIME_WINDOWS: Record<string, number> = {
  all: 0,
  '15m': 900e3,
  '1h': 3600e3,
  '24h': 86_400e3,
  '7d': 604_800e3,
};
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

type SortKey = 'inserted' | 'updated' | 'status' | 'type' | 'owner' | 'progress' | 'attempt';
/** Keys whose value never changes after a row exists: sorting by them need not follow updates. */
const FIXED_KEYS = new Set<SortKey>(['inserted', 'type', 'owner']);

interface Filters {
  status: string;
  type: string;
  owner: string;
  window: string;
  text: string;
}

function compare(key: SortKey): (a: Row, b: Row) => number {
  switch (key) {
    case 'inserted':
      return (a, b) => a.inserted - b.inserted || (a.task_id < b.task_id ? -1 : 1);
    case 'updated':
      return (a, b) => a.updated - b.updated;
    case 'progress':
      return (a, b) => a.progress - b.progress;
    case 'attempt':
      return (a, b) => a.attempt - b.attempt;
    default:
      return (a, b) => String(a[key] ?? '').localeCompare(String(b[key] ?? ''));
  }
}

interface Props {
  store: TaskStore;
  session: Session;
  api: Api;
  now: number;
  /** Bumped after a rejoin: the first page of history is read again. */
  resync: number;
}

export function TaskTable({ store, session, api, now, resync }: Props) {
  const [, rerender] = useReducer((x: number) => x + 1, 0);
  const [filters, setFilters] = useState<Filters>({
    status: '',
    type: '',
    owner: '',
    window: 'all',
    text: '',
  });
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'inserted', dir: -1 });
  const [follow, setFollow] = useState(true);
  const frozen = useRef<Set<string> | null>(null);
  const history = useRef<{ cursor: string | null; loading: boolean; error: string | null }>({
    cursor: null,
    loading: false,
    error: null,
  });
  const scroller = useRef<HTMLDivElement>(null);

  useEffect(() => store.subscribe(() => rerender(0)), [store]);

  // History: the first page for the server-side filters, then older pages on demand.
  const serverQuery = { status: filters.status, type: filters.type, owner: filters.owner.trim() };
  const queryKey = JSON.stringify(serverQuery);
  const load = async (first: boolean) => {
    const h = history.current;
    if (h.loading || (!first && !h.cursor)) return;
    h.loading = true;
    h.error = null;
    rerender(0);
    try {
      const page = await api.list({
        ...serverQuery,
        all: session.admin && !serverQuery.owner,
        cursor: first ? null : h.cursor,
        limit: PAGE,
      });
      for (const t of page.tasks) store.apply(t);
      if (first || h.cursor) h.cursor = page.next_cursor;
    } catch (err) {
      h.error = (err as Error).message;
    } finally {
      h.loading = false;
      rerender(0);
    }
  };
  useEffect(() => {
    history.current.cursor = null;
    void load(true);
  }, [queryKey, resync]);

  // The view: sorted (again only when rows come or go, or the key can change), then filtered.
  const sortVersion = FIXED_KEYS.has(sort.key) ? 0 : store.version;
  const sorted = useMemo(() => {
    const rows = [...store.rows.values()];
    const cmp = compare(sort.key);
    rows.sort(sort.dir === 1 ? cmp : (a, b) => cmp(b, a));
    return rows;
  }, [store.shape, sort.key, sort.dir, sortVersion]);
  const view = useMemo(() => {
    const since = TIME_WINDOWS[filters.window] ? now - TIME_WINDOWS[filters.window] : 0;
    const text = filters.text.trim().toLowerCase();
    const owner = filters.owner.trim();
    const only = frozen.current;
    return sorted.filter(
      (r) =>
        (!filters.status || r.status === filters.status) &&
        (!filters.type || r.type === filters.type) &&
        (!owner || r.owner === owner) &&
        r.inserted >= since &&
        (!only || only.has(r.task_id)) &&
        (!text ||
          r.task_id.includes(text) ||
          r.type.toLowerCase().includes(text) ||
          (r.owner ?? '').toLowerCase().includes(text) ||
          (r.message ?? '').toLowerCase().includes(text)),
    );
  }, [sorted, store.version, filters, follow, Math.floor(now / 10_000)]);
  const newSinceFrozen = frozen.current ? store.rows.size - frozen.current.size : 0;

  const types = useMemo(
    () => [...new Set([...store.rows.values()].map((r) => r.type))].sort(),
    [store.shape],
  );

  // Virtual rows.
  const virtualizer = useRef<Virtualizer<HTMLDivElement, HTMLDivElement> | null>(null);
  const options: VirtualizerOptions<HTMLDivElement, HTMLDivElement> = {
    count: view.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8,
    scrollToFn: elementScroll,
    observeElementRect,
    observeElementOffset,
    getItemKey: (i) => view[i]?.task_id ?? i,
    onChange: () => rerender(0),
  };
  if (virtualizer.current) virtualizer.current.setOptions(options);
  else virtualizer.current = new Virtualizer(options);
  const v = virtualizer.current;
  useLayoutEffect(() => v._didMount(), []);
  useLayoutEffect(() => {
    v._willUpdate();
  });
  const items = v.getVirtualItems();

  // Reaching the end pages back through history (unless the time window excludes older rows).
  const last = items[items.length - 1];
  const oldest = view[view.length - 1];
  const windowMs = TIME_WINDOWS[filters.window];
  const olderWanted = !windowMs || (oldest ? oldest.inserted >= now - windowMs : true);
  useEffect(() => {
    if (last && last.index >= view.length - 5 && history.current.cursor && olderWanted) void load(false);
  }, [last?.index, view.length]);

  const set = (patch: Partial<Filters>) => setFilters({ ...filters, ...patch });
  const toggleFollow = () => {
    frozen.current = follow ? new Set(store.rows.keys()) : null;
    setFollow(!follow);
  };
  const header = (key: SortKey, label: string) => (
    <button
      type="button"
      class={`sort${sort.key === key ? ' active' : ''}`}
      data-sort={key}
      onClick={() => setSort({ key, dir: sort.key === key ? (-sort.dir as 1 | -1) : -1 })}
    >
      {label}
      {sort.key === key ? (sort.dir === -1 ? ' ▼' : ' ▲') : ''}
    </button>
  );

  return (
    <section class="tasks" aria-label="tasks">
      <header class="section-head">
        <h2>
          Tasks <span class="muted">{count(view.length)} shown</span>
        </h2>
        <div class="filters">
          <select
            aria-label="status"
            data-filter="status"
            value={filters.status}
            onChange={(e) => set({ status: (e.target as HTMLSelectElement).value })}
          >
            <option value="">every status</option>
            {TASK_STATUSES.map((s) => (
              <option value={s} key={s}>
                {s}
              </option>
            ))}
          </select>
          <select
            aria-label="type"
            data-filter="type"
            value={filters.type}
            onChange={(e) => set({ type: (e.target as HTMLSelectElement).value })}
          >
            <option value="">every type</option>
            {types.map((t) => (
              <option value={t} key={t}>
                {t}
              </option>
            ))}
          </select>
          {session.admin && (
            <input
              aria-label="owner"
              data-filter="owner"
              placeholder="owner"
              value={filters.owner}
              onChange={(e) => set({ owner: (e.target as HTMLInputElement).value })}
            />
          )}
          <select
            aria-label="time window"
            data-filter="time"
            value={filters.window}
            onChange={(e) => set({ window: (e.target as HTMLSelectElement).value })}
          >
            {Object.keys(TIME_WINDOWS).map((w) => (
              <option value={w} key={w}>
                {w === 'all' ? 'any time' : `last ${w}`}
              </option>
            ))}
          </select>
          <input
            aria-label="search"
            data-filter="text"
            type="search"
            placeholder="search id, type, owner, message"
            value={filters.text}
            onInput={(e) => set({ text: (e.target as HTMLInputElement).value })}
          />
          <label class="follow">
            <input type="checkbox" checked={follow} onChange={toggleFollow} data-filter="follow" /> follow
            live
          </label>
          {!follow && newSinceFrozen > 0 && (
            <button type="button" onClick={toggleFollow} data-action="show-new">
              {count(newSinceFrozen)} new
            </button>
          )}
        </div>
      </header>
      <div class="table">
        <div class="row head">
          <span class="c-id">id</span>
          <span class="c-status">{header('status', 'status')}</span>
          <span class="c-type">{header('type', 'type')}</span>
          <span class="c-owner">{header('owner', 'owner')}</span>
          <span class="c-progress">{header('progress', 'progress')}</span>
          <span class="c-message">message</span>
          <span class="c-attempt">{header('attempt', 'try')}</span>
          <span class="c-age">{header('inserted', 'age')}</span>
          <span class="c-duration">{header('updated', 'duration')}</span>
        </div>
        <div class="body" ref={scroller} data-rows="">
          <div style={{ height: `${v.getTotalSize()}px`, position: 'relative' }}>
            {items.map((item) => {
              const r = view[item.index];
              return r ? <TaskRow key={r.task_id} row={r} top={item.start} now={now} /> : null;
            })}
          </div>
          {view.length === 0 && !history.current.loading && <p class="empty">No tasks match.</p>}
        </div>
        <footer class="table-foot">
          {history.current.error && <span class="error">{history.current.error}</span>}
          {history.current.loading ? (
            <span class="muted">loading…</span>
          ) : history.current.cursor && olderWanted ? (
            <button type="button" data-action="older" onClick={() => void load(false)}>
              load older
            </button>
          ) : (
            <span class="muted">{view.length > 0 ? 'all of history loaded' : ''}</span>
          )}
        </footer>
      </div>
    </section>
  );
}

function TaskRow({ row: r, top, now }: { row: Row; top: number; now: number }) {
  const href = `#/tasks/${r.task_id}`;
  const finished = FINISHED.has(r.status);
  return (
    <div
      class={`row status-${r.status}`}
      data-task-id={r.task_id}
      data-status={r.status}
      style={{ transform: `translateY(${top}px)` }}
    >
      <span class="c-id">
        <a href={href} title={r.task_id}>
          {shortId(r.task_id)}
        </a>
      </span>
      <span class="c-status">
        <span class={`badge status-${r.status}`}>{r.status}</span>
      </span>
      <span class="c-type">{r.type}</span>
      <span class="c-owner">{r.owner ?? ''}</span>
      <span class="c-progress">
        <span class="bar" data-progress={String(r.progress)}>
          <span class="fill" style={{ transform: `scaleX(${r.progress})` }} />
        </span>
        <span class="pct">{percent(r.progress)}</span>
      </span>
      <span class="c-message" title={r.message ?? ''}>
        {r.message ?? ''}
      </span>
      <span class="c-attempt">{r.attempt}</span>
      <span class="c-age">{age(r.inserted, now)}</span>
      <span class="c-duration">{finished ? duration(r.updated - r.inserted) : '–'}</span>
    </div>
  );
}
