// The dashboard's shell: sign-in, hash routes (`#/` overview above the task table, `#/tasks/<id>`
// a task), ONE live socket for the session, the stats (pushed on `admin:tasks` for admins, read
// again after task events for everyone, at most every 2 s), and the catch-up after a rejoin.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Stats } from '../../contract/index.ts';
import { isTaskId } from '../../contract/topics.ts';
import { Api } from '../api.ts';
import { restoreSession, type Session, signOut } from '../auth.ts';
import { type ConnectionState, Live } from '../live.ts';
import { TaskStore } from '../store.ts';
import { Overview } from './Overview.tsx';
import { SignIn } from './SignIn.tsx';
import { TaskPage } from './TaskPage.tsx';
import { TaskTable } from './TaskTable.tsx';

/** The window of the stats that `admin:tasks` pushes. */
const PUSHED_WINDOW = '1h';
const STATS_EVERY_MS = 2000;
/** Tasks read one by one after a rejoin (in flight before, not in the rejoin's reply). */
const CATCH_UP_LIMIT = 200;

function route(): { page: 'home' } | { page: 'task'; id: string } {
  const m = /^#\/tasks\/([0-9a-f-]{36})$/.exec(location.hash);
  return m && isTaskId(m[1]) ? { page: 'task', id: m[1] } : { page: 'home' };
}

export function App() {
  const [session, setSession] = useState<Session | null>(() => restoreSession());
  const [notice, setNotice] = useState<string | null>(null);
  if (!session) return <SignIn onSignIn={setSession} notice={notice} />;
  return (
    <Dashboard
      key={session.token}
      session={session}
      onSignOut={(why) => {
        signOut();
        setNotice(why);
        setSession(null);
      }}
    />
  );
}

function Dashboard({ session, onSignOut }: { session: Session; onSignOut: (why: string | null) => void }) {
  const store = useMemo(() => new TaskStore(), []);
  const api = useMemo(() => new Api(() => session.token), []);
  const [where, setWhere] = useState(route());
  const [conn, setConn] = useState<ConnectionState>('connecting');
  const [refused, setRefused] = useState<string | null>(null);
  const [stats, setStats] = useState<Stats | null>(null);
  const [statsError, setStatsError] = useState<string | null>(null);
  const [statsWindow, setStatsWindow] = useState(PUSHED_WINDOW);
  const windowRef = useRef(statsWindow);
  windowRef.current = statsWindow;
  const [resync, setResync] = useState(0);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener('hashchange', onHash);
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      removeEventListener('hashchange', onHash);
      clearInterval(tick);
    };
  }, []);

  // Stats: read now and whenever the window changes; then at most every 2 s after task events.
  const pending = useRef<number | undefined>(undefined);
  const readStats = async () => {
    pending.current = undefined;
    try {
      setStats(await api.stats(windowRef.current, session.admin));
      setStatsError(null);
    } catch (err) {
      setStatsError(`stats: ${(err as Error).message}`);
    }
  };
  const statsSoon = () => {
    pending.current ??= window.setTimeout(() => void readStats(), STATS_EVERY_MS);
  };
  useEffect(() => {
    void readStats();
  }, [statsWindow]);

  useEffect(() => {
    api.onUnauthorized = () => onSignOut('The token was refused (expired?). Sign in again.');
    const live = new Live({
      session,
      store,
      onState: setConn,
      onStats: (s) => {
        if (windowRef.current === PUSHED_WINDOW) setStats(s);
      },
      onEvent: () => {
        // Admins get fresh figures pushed for the default window; everyone else reads them again.
        if (!session.admin || windowRef.current !== PUSHED_WINDOW) statsSoon();
      },
      onJoined: (tasks, rejoin) => {
        setRefused(null);
        if (!rejoin) return;
        // Catch up: history's first page again, and the truth of what was in flight before.
        setResync((n) => n + 1);
        void readStats();
        const inReply = new Set(tasks.map((t) => t.task_id));
        const stale = [...store.rows.values()]
          .filter((r) => (r.status === 'queued' || r.status === 'running') && !inReply.has(r.task_id))
          .slice(0, CATCH_UP_LIMIT);
        for (const r of stale)
          api.get(r.task_id).then(
            (t) => store.apply(t),
            () => {},
          );
      },
      onRefused: (reason) => setRefused(reason),
    });
    return () => live.close();
  }, []);

  return (
    <div class="app">
      <header class="top">
        <h1>
          <a href="#/">taskwire</a>
        </h1>
        <span class={`connection ${conn}`} data-connection={conn} role="status">
          {conn === 'live' ? 'live' : conn === 'reconnecting' ? 'reconnecting…' : 'connecting…'}
        </span>
        <span class="who">
          {session.user} {session.admin ? <span class="badge admin">admin</span> : null}
        </span>
        <button type="button" data-action="sign-out" onClick={() => onSignOut(null)}>
          Sign out
        </button>
      </header>
      {refused && <p class="error">The live feed was refused: {refused}</p>}
      <main>
        {where.page === 'task' ? (
          <TaskPage key={where.id} id={where.id} api={api} store={store} token={() => session.token} />
        ) : (
          <>
            <Overview stats={stats} window={statsWindow} onWindow={setStatsWindow} error={statsError} />
            <TaskTable store={store} session={session} api={api} now={now} resync={resync} />
          </>
        )}
      </main>
    </div>
  );
}
