// One task (`#/tasks/<id>`): its state (live, from the store's events), input and result as
// pretty JSON, error, the audit timeline (`/events`, read again when the task moves on), and the
// actions cancel and retry, each confirmed by an element of the page (`data-action="confirm"`),
// never the browser's confirm(); and the streamed output, live (`data-field="output"`).
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TaskAuditEvent } from '../../contract/index.ts';
import { type Api, ApiError, type OwnedTask } from '../api.ts';
import { duration, json, percent, time } from '../format.ts';
import { followOutput } from '../output.ts';
import type { TaskStore } from '../store.ts';

interface Props {
  id: string;
  api: Api;
  store: TaskStore;
  token: () => string;
}

/** Characters of output kept on the page (the newest). */
const OUTPUT_KEEP = 200_000;

type Action = 'cancel' | 'retry';
const ACTION_TEXT: Record<Action, { ask: string; yes: string; done: string }> = {
  cancel: {
    ask: 'Cancel this task? A running attempt is stopped.',
    yes: 'Yes, cancel it',
    done: 'Cancel requested',
  },
  retry: {
    ask: 'Retry this task? A new series of attempts starts.',
    yes: 'Yes, retry it',
    done: 'Retry queued',
  },
};

export function TaskPage({ id, api, store, token }: Props) {
  const [task, setTask] = useState<OwnedTask | null>(null);
  const [events, setEvents] = useState<TaskAuditEvent[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<Action | null>(null);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);
  const [, setSeen] = useState(0);
  const row = store.rows.get(id);
  const liveSeq = row?.seq ?? -1;

  // Live: re-render on the store's frames; read the task and its trail again when it moved on
  // (coalesced: at most every 300 ms).
  useEffect(() => store.subscribe(() => setSeen(store.version)), [store]);
  const reading = useRef<number | undefined>(undefined);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
      clearTimeout(reading.current);
    },
    [],
  );
  useEffect(() => {
    if (reading.current !== undefined) return; // a read is already due: it will see this change too
    const read = async () => {
      reading.current = undefined;
      try {
        const [t, e] = await Promise.all([api.get(id), api.events(id)]);
        if (!mounted.current) return;
        store.apply(t);
        setTask(t);
        setEvents(e);
        setError(null);
      } catch (err) {
        if (mounted.current)
          setError(err instanceof ApiError && err.status === 404 ? 'No such task.' : (err as Error).message);
      }
    };
    reading.current = window.setTimeout(read, task ? 300 : 0);
  }, [liveSeq]);

  // Streamed output: text chunks as they are, other JSON values one per line; drawn once a frame.
  const [output, setOutput] = useState<{
    text: string;
    chunks: number;
    ended: boolean;
    error: string | null;
  }>({
    text: '',
    chunks: 0,
    ended: false,
    error: null,
  });
  useEffect(() => {
    const abort = new AbortController();
    let parts: { index: number; text: string }[] = [];
    let ended = false;
    let problem: string | null = null;
    let frame = 0;
    const draw = () => {
      frame = 0;
      let text = parts.map((p) => p.text).join('');
      if (text.length > OUTPUT_KEEP) text = `…${text.slice(-OUTPUT_KEEP)}`;
      setOutput({ text, chunks: parts.length, ended, error: problem });
    };
    const soon = () => {
      frame ||= requestAnimationFrame(draw);
    };
    void followOutput(
      id,
      token,
      {
        chunk: (c) => {
          parts.push({
            index: c.index,
            text: typeof c.data === 'string' ? c.data : `${JSON.stringify(c.data)}\n`,
          });
          soon();
        },
        reset: (start) => {
          parts = parts.filter((p) => p.index < start);
          soon();
        },
        end: () => {
          ended = true;
          soon();
        },
        error: (message) => {
          problem = message;
          soon();
        },
      },
      abort.signal,
    );
    return () => {
      abort.abort();
      cancelAnimationFrame(frame);
    };
  }, [id]);

  if (error && !task) return <p class="error">{error}</p>;
  if (!task) return <p class="muted">loading…</p>;

  // The newest of the REST state and the live events.
  const live = row && row.seq > task.seq ? row : null;
  const status = live?.status ?? task.status;
  const progress = live?.progress ?? task.progress;
  const message = live ? live.message : task.message;
  const attempt = live?.attempt ?? task.attempt;
  const finished = status === 'completed' || status === 'failed' || status === 'cancelled';

  const act = async (action: Action) => {
    setBusy(true);
    setOutcome(null);
    try {
      const t = action === 'cancel' ? await api.cancel(id) : await api.retry(id);
      store.apply(t);
      setOutcome({ ok: true, text: ACTION_TEXT[action].done });
    } catch (err) {
      const e = err as ApiError;
      setOutcome({
        ok: false,
        text:
          action === 'retry' && e.status === 404 && e.code === 'not_found' && e.message.startsWith('no route')
            ? 'This server has no retry route yet.'
            : e.message,
      });
    } finally {
      setBusy(false);
      setConfirm(null);
    }
  };

  return (
    <article class="task-page" data-task-page={id}>
      <p>
        <a href="#/">← all tasks</a>
      </p>
      <header class="section-head">
        <h2>
          Task <code>{id}</code>
        </h2>
        <span class={`badge status-${status}`} data-field="status">
          {status}
        </span>
      </header>
      <div class={`task-state status-${status}`}>
        <span class="bar wide" data-progress={String(progress)}>
          <span class="fill" style={{ transform: `scaleX(${progress})` }} />
        </span>
        <span>{percent(progress)}</span>
      </div>
      <dl class="facts">
        <dt>message</dt>
        <dd data-field="message">{message ?? ''}</dd>
        <dt>type</dt>
        <dd data-field="type">{task.type}</dd>
        {task.owner !== undefined && (
          <>
            <dt>owner</dt>
            <dd data-field="owner">{task.owner}</dd>
          </>
        )}
        <dt>attempt</dt>
        <dd data-field="attempt">
          {attempt} of {task.max_attempts}
        </dd>
        <dt>priority</dt>
        <dd>{task.priority}</dd>
        <dt>node</dt>
        <dd>{task.node ?? '–'}</dd>
        <dt>created</dt>
        <dd>{time(task.inserted_at)}</dd>
        <dt>updated</dt>
        <dd>{time(live ? live.updated : task.updated_at)}</dd>
        {finished && (
          <>
            <dt>took</dt>
            <dd>{duration(Date.parse(task.updated_at) - Date.parse(task.inserted_at))}</dd>
          </>
        )}
      </dl>

      <div class="actions">
        {!finished && (
          <button type="button" data-action="cancel" disabled={busy} onClick={() => setConfirm('cancel')}>
            Cancel
          </button>
        )}
        {(status === 'failed' || status === 'cancelled') && (
          <button type="button" data-action="retry" disabled={busy} onClick={() => setConfirm('retry')}>
            Retry
          </button>
        )}
        {confirm && (
          <div class="confirm" role="alertdialog" aria-label={`confirm ${confirm}`}>
            <span>{ACTION_TEXT[confirm].ask}</span>
            <button
              type="button"
              class="danger"
              data-action="confirm"
              disabled={busy}
              onClick={() => void act(confirm)}
            >
              {ACTION_TEXT[confirm].yes}
            </button>
            <button type="button" data-action="dismiss" onClick={() => setConfirm(null)}>
              Keep it
            </button>
          </div>
        )}
        {outcome && (
          <span class={outcome.ok ? 'ok' : 'error'} data-field="action-result">
            {outcome.text}
          </span>
        )}
      </div>

      <div class="json-blocks">
        <section>
          <h3>Input</h3>
          <pre data-field="input">{json(task.input)}</pre>
        </section>
        <section>
          <h3>Result</h3>
          <pre data-field="result">{task.result === null ? '–' : json(task.result)}</pre>
        </section>
        {task.error && (
          <section>
            <h3>Error</h3>
            <pre class="error" data-field="error">
              {json(task.error)}
            </pre>
          </section>
        )}
      </div>

      <section class="output" data-hook="output">
        <h3>
          Output{' '}
          <span class="muted">
            {output.chunks} chunks{output.ended ? '' : ', live'}
          </span>
        </h3>
        {output.error && !output.ended && <p class="error">{output.error}</p>}
        {output.chunks > 0 ? (
          <pre data-field="output">{output.text}</pre>
        ) : (
          <p class="muted">{output.ended ? 'No streamed output.' : 'No output yet.'}</p>
        )}
      </section>

      <section class="timeline">
        <h3>Audit trail</h3>
        <ol data-field="events">
          {events.map((e) => (
            <li key={e.id} data-event={e.event}>
              <time>{time(e.inserted_at)}</time> <span class={`badge event-${e.event}`}>{e.event}</span>{' '}
              <span class="muted">
                seq {e.seq}, attempt {e.attempt}
              </span>
              {Object.keys(e.data).length > 0 && <code class="data">{JSON.stringify(e.data)}</code>}
            </li>
          ))}
        </ol>
      </section>
    </article>
  );
}
