// The REST half of the client: api.md's HTTP routes over global fetch, error bodies turned into
// typed errors. It knows nothing of sockets.
import { TaskwireApiError, TaskwireConnectionError, TaskwireError } from './errors.ts';
import type { ListOptions, SubmitOptions, Task, TaskAuditEvent, TaskPage } from './types.ts';

export interface RestOptions {
  /** The server's HTTP base, e.g. `http://127.0.0.1:4000`. */
  baseUrl: string;
  token: string | (() => string);
  /** Bound on each request (default 15 s). */
  timeoutMs: number;
  fetch: typeof fetch;
}

export class Rest {
  readonly #o: RestOptions;

  constructor(opts: RestOptions) {
    this.#o = opts;
  }

  submit(body: Record<string, unknown>, opts: SubmitOptions = {}): Promise<Task> {
    const headers: Record<string, string> = {};
    if (opts.idempotencyKey !== undefined) headers['idempotency-key'] = opts.idempotencyKey;
    const options: Record<string, unknown> = {};
    if (opts.priority !== undefined) options.priority = opts.priority;
    if (opts.runAt !== undefined)
      options.run_at = opts.runAt instanceof Date ? opts.runAt.toISOString() : opts.runAt;
    if (opts.delayMs !== undefined) options.delay_ms = opts.delayMs;
    return this.request<Task>('POST', '/api/tasks', { ...body, ...options }, headers, opts.signal);
  }

  get(id: string): Promise<Task> {
    return this.request<Task>('GET', `/api/tasks/${encodeURIComponent(id)}`);
  }

  list(opts: ListOptions = {}): Promise<TaskPage> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(opts)) {
      if (value !== undefined && value !== null) query.set(key, String(value));
    }
    const qs = query.toString();
    return this.request<TaskPage>('GET', `/api/tasks${qs ? `?${qs}` : ''}`);
  }

  cancel(id: string): Promise<Task> {
    return this.request<Task>('POST', `/api/tasks/${encodeURIComponent(id)}/cancel`);
  }

  retry(id: string): Promise<Task> {
    return this.request<Task>('POST', `/api/tasks/${encodeURIComponent(id)}/retry`);
  }

  async events(id: string): Promise<TaskAuditEvent[]> {
    return (
      await this.request<{ events: TaskAuditEvent[] }>('GET', `/api/tasks/${encodeURIComponent(id)}/events`)
    ).events;
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<T> {
    const { baseUrl, token, timeoutMs } = this.#o;
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    try {
      res = await this.#o.fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          accept: 'application/json',
          authorization: `Bearer ${typeof token === 'function' ? token() : token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted)
        throw new TaskwireError('timeout', `${method} ${path}: no answer in ${timeoutMs} ms`);
      throw new TaskwireConnectionError(baseUrl, causeText(err), { cause: err });
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const error = (parsed as { error?: unknown } | undefined)?.error;
      throw new TaskwireApiError(
        res.status,
        error && typeof error === 'object'
          ? (error as Record<string, unknown>)
          : { message: text.slice(0, 200) },
      );
    }
    if (parsed === undefined) {
      throw new TaskwireError(
        'bad_response',
        `${method} ${path}: expected JSON, got ${JSON.stringify(text.slice(0, 80))}`,
      );
    }
    return parsed as T;
  }
}

/** The useful part of a fetch failure ("connect ECONNREFUSED 127.0.0.1:4000"). */
function causeText(err: unknown): string | undefined {
  const cause = (err as { cause?: unknown })?.cause;
  const source = cause instanceof Error ? cause : err instanceof Error ? err : undefined;
  if (!source) return undefined;
  const code = (source as { code?: unknown }).code;
  return typeof code === 'string' ? code : source.message;
}
