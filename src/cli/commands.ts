// The client commands of the CLI (submit, watch, ls, cancel, retry, events), on the SDK. Each takes
// --url, --token and --json; errors become one line on stderr and an exit code (connect.ts).
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  createClient,
  type Task,
  type TaskAuditEvent,
  type TaskHandle,
  type TaskStatus,
  type TaskwireClient,
} from '../client/index.ts';
import { CliError, type ClientFlags, DEFAULT_URL, resolveToken, toCliError } from './connect.ts';
import { EXIT } from './exit.ts';
import { printOutput } from './output-stream.ts';
import { type WatchMode, WatchView } from './watch-view.ts';

const STATUSES: TaskStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function priority(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < -100 || n > 100)
    throw new InvalidArgumentError('must be an integer in -100..100');
  return n;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--delay`: milliseconds, or a number with a unit: 500ms, 30s, 5m, 2h, 1d. */
export function parseDelay(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('must be milliseconds or a duration like 30s, 5m, 2h, 1d');
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 'ms']);
}

/** `key=value`: the value as JSON when it parses (5, true, null, [1], {"a":1}, "x"), else text. */
export function parsePair(pair: string): [string, unknown] {
  const eq = pair.indexOf('=');
  if (eq < 1) throw new CliError(`expected key=value, got ${JSON.stringify(pair)}`, EXIT.usage);
  const key = pair.slice(0, eq);
  const raw = pair.slice(eq + 1);
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}

export function buildInput(json: string | undefined, pairs: string[]): Record<string, unknown> {
  let input: Record<string, unknown> = {};
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (err) {
      throw new CliError(`--input is not JSON: ${(err as Error).message}`, EXIT.usage);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new CliError('--input must be a JSON object', EXIT.usage);
    }
    input = parsed as Record<string, unknown>;
  }
  for (const pair of pairs) {
    const [key, value] = parsePair(pair);
    input[key] = value;
  }
  return input;
}

/** --url, --token and --json, on every client command. */
function clientCommand(program: Command, name: string): Command {
  return program
    .command(name)
    .addOption(new Option('--url <url>', 'the server').env('TASKWIRE_URL').default(DEFAULT_URL))
    .addOption(
      new Option('--token <jwt>', 'bearer token (default: a dev token from the local secret)').env(
        'TASKWIRE_TOKEN',
      ),
    )
    .option('--json', 'machine-readable output (one JSON document; NDJSON events when watching)');
}

/** Runs a client command: connect, act, map errors to exit codes, always close the client. */
async function run(
  flags: ClientFlags,
  act: (tw: TaskwireClient) => Promise<number | undefined>,
): Promise<never> {
  let tw: TaskwireClient | undefined;
  let code: number;
  try {
    tw = createClient({ url: flags.url, token: await resolveToken(flags) });
    code = (await act(tw)) ?? EXIT.ok;
  } catch (err) {
    const e = toCliError(err);
    process.stderr.write(`taskwire: ${e.message}\n`);
    code = e.exitCode;
  } finally {
    tw?.close();
  }
  process.exit(code);
}

function watchMode(flags: ClientFlags): WatchMode {
  return flags.json ? 'json' : process.stdout.isTTY ? 'bars' : 'lines';
}

/** Follows the handles until they end; exit 1 when any failed or was cancelled. */
async function watchUntilDone(handles: TaskHandle[], flags: ClientFlags & OutputFlag): Promise<number> {
  if (flags.output && !flags.json) return streamUntilDone(handles[0]);
  const view = new WatchView({ mode: watchMode(flags), output: flags.output });
  const onSigint = () => {
    view.stop();
    process.stderr.write('taskwire: stopped watching (the tasks go on)\n');
    process.exit(EXIT.interrupted);
  };
  process.once('SIGINT', onSigint);
  try {
    const outcome = await view.finish(handles.map((h) => view.follow(h)));
    return outcome.failed + outcome.cancelled > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    process.off('SIGINT', onSigint);
    view.stop();
  }
}

/** `--output`: the text on stdout as it streams, no progress display; exit 1 unless completed. */
async function streamUntilDone(handle: TaskHandle): Promise<number> {
  const onSigint = () => {
    process.stderr.write('\ntaskwire: stopped watching (the task goes on)\n');
    process.exit(EXIT.interrupted);
  };
  process.once('SIGINT', onSigint);
  try {
    const status = await printOutput(handle, {
      out: process.stdout,
      err: process.stderr,
      tty: Boolean(process.stdout.isTTY),
    });
    return status === 'completed' ? EXIT.ok : EXIT.failed;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

interface OutputFlag {
  output?: boolean;
}

function short(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '))
    .join('\n');
}

function taskRows(tasks: Task[]): string {
  return table([
    ['ID', 'TYPE', 'STATUS', 'PROGRESS', 'ATTEMPT', 'UPDATED', 'MESSAGE'],
    ...tasks.map((t) => [
      t.task_id,
      t.type,
      t.status,
      `${Math.floor(t.progress * 100)}%`,
      `${t.attempt}/${t.max_attempts}`,
      short(t.updated_at),
      (t.status === 'failed' ? (t.error?.message ?? '') : (t.message ?? '')).slice(0, 60),
    ]),
  ]);
}

function eventRows(events: TaskAuditEvent[]): string {
  return table([
    ['SEQ', 'TIME', 'EVENT', 'ATTEMPT', 'DATA'],
    ...events.map((e) => [
      String(e.seq),
      short(e.inserted_at),
      e.event,
      String(e.attempt),
      JSON.stringify(e.data),
    ]),
  ]);
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function addClientCommands(program: Command): void {
  clientCommand(program, 'submit')
    .description('create a task: `taskwire submit demo steps=5 interval_ms=500 --watch`')
    .argument('<type>', 'the task type')
    .argument('[input...]', 'input fields as key=value (values parse as JSON when they can)')
    .option('-i, --input <json>', 'input as a JSON object (key=value pairs override its fields)')
    .option('-w, --watch', 'show live progress until the task ends (exit 1 if it fails or is cancelled)')
    .option(
      '-o, --output',
      'print its streamed output as it comes (implies --watch; with --json: NDJSON lines)',
    )
    .option('--idempotency-key <key>', 'a repeat with the same key returns the first task')
    .option('--max-attempts <n>', 'attempts before the task fails (1..25)', positiveInt)
    .option('--priority <n>', 'higher runs sooner (-100..100, default 0)', priority)
    .option('--delay <duration>', 'do not start before this much time: ms, or 30s, 5m, 2h, 1d', parseDelay)
    .option('--run-at <time>', 'do not start before this ISO 8601 time (not with --delay)')
    .action(
      async (
        type: string,
        pairs: string[],
        opts: ClientFlags &
          OutputFlag & {
            input?: string;
            watch?: boolean;
            idempotencyKey?: string;
            maxAttempts?: number;
            priority?: number;
            delay?: number;
            runAt?: string;
          },
      ) =>
        run(opts, async (tw) => {
          const body: Record<string, unknown> = { ...buildInput(opts.input, pairs), type };
          if (opts.maxAttempts !== undefined) body.max_attempts = opts.maxAttempts;
          const options = {
            idempotencyKey: opts.idempotencyKey,
            priority: opts.priority,
            delayMs: opts.delay,
            runAt: opts.runAt,
          };
          if (!opts.watch && !opts.output) {
            const task = await tw.create(body, options);
            if (opts.json) print(JSON.stringify(task));
            else
              print(
                `${task.task_id}  ${task.type}  ${task.status}${task.scheduled_at ? ` (starts at ${short(task.scheduled_at)})` : ''}   (follow it: npx taskwire watch ${task.task_id})`,
              );
            return EXIT.ok;
          }
          const handle = await tw.submit(body, { ...options, output: Boolean(opts.output) });
          return watchUntilDone([handle], opts);
        }),
    );

  clientCommand(program, 'watch')
    .description('show live progress of tasks until they end (exit 1 if any fails or is cancelled)')
    .argument('<id...>', 'task ids')
    .option(
      '-o, --output',
      "print the task's streamed output as it comes (one task; with --json: NDJSON lines)",
    )
    .action(async (ids: string[], opts: ClientFlags & OutputFlag) => {
      if (opts.output && ids.length > 1) {
        process.stderr.write('taskwire: --output follows one task at a time\n');
        process.exit(EXIT.usage);
      }
      return run(opts, async (tw) =>
        watchUntilDone(
          await Promise.all(ids.map((id) => tw.watch(id, { output: Boolean(opts.output) }))),
          opts,
        ),
      );
    });

  clientCommand(program, 'ls')
    .description('list your tasks, newest first')
    .addOption(new Option('-s, --status <status>', 'only this status').choices(STATUSES))
    .option('-t, --type <type>', 'only this type')
    .option('-n, --limit <n>', 'at most this many (1..100)', positiveInt, 20)
    .option('--cursor <cursor>', 'the next page (printed at the end of the previous one)')
    .action(
      async (opts: ClientFlags & { status?: TaskStatus; type?: string; limit: number; cursor?: string }) =>
        run(opts, async (tw) => {
          const page = await tw.list({
            status: opts.status,
            type: opts.type,
            limit: opts.limit,
            cursor: opts.cursor,
          });
          if (opts.json) {
            print(JSON.stringify(page));
            return EXIT.ok;
          }
          print(page.tasks.length ? taskRows(page.tasks) : 'no tasks');
          if (page.next_cursor) print(`more: npx taskwire ls --cursor ${page.next_cursor}`);
          return EXIT.ok;
        }),
    );

  clientCommand(program, 'cancel')
    .description('cancel a queued or running task')
    .argument('<id>', 'task id')
    .action(async (id: string, opts: ClientFlags) =>
      run(opts, async (tw) => {
        const task = await tw.cancel(id);
        if (opts.json) print(JSON.stringify(task));
        else if (task.status === 'cancelled') print(`${task.task_id}  cancelled`);
        else print(`${task.task_id}  cancel requested (it stops at the handler's next check)`);
        return EXIT.ok;
      }),
    );

  clientCommand(program, 'retry')
    .description('run a failed or cancelled task again (a new series of attempts)')
    .argument('<id>', 'task id')
    .option('-w, --watch', 'show live progress until the task ends (exit 1 if it fails or is cancelled)')
    .action(async (id: string, opts: ClientFlags & { watch?: boolean }) =>
      run(opts, async (tw) => {
        const task = await tw.retry(id);
        if (opts.watch) return watchUntilDone([await tw.watch(id)], opts);
        if (opts.json) print(JSON.stringify(task));
        else
          print(
            `${task.task_id}  ${task.status}  (attempt ${task.attempt + 1} of ${task.max_attempts} next)`,
          );
        return EXIT.ok;
      }),
    );

  clientCommand(program, 'events')
    .description("a task's audit trail, oldest first")
    .argument('<id>', 'task id')
    .action(async (id: string, opts: ClientFlags) =>
      run(opts, async (tw) => {
        const events = await tw.events(id);
        print(opts.json ? JSON.stringify({ events }) : eventRows(events));
        return EXIT.ok;
      }),
    );
}
