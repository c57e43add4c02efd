// The `taskwire` command line: start the server, mint tokens, and the client commands
// (submit, watch, ls, cancel, events; see commands.ts).
import './malloc-arenas.ts';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { loadOrCreateSecret, Tokens } from '../auth/index.ts';
import { ConfigError, loadConfig } from '../config/index.ts';
import type { TaskwireServer } from '../server/index.ts';
import { EXIT } from './exit.ts';

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

/** A stop signal repeated within this window is the same request delivered twice, not a second one. */
const SAME_REQUEST_MS = 250;

function fail(message: string, code = 1): never {
  process.stderr.write(`taskwire: ${message}\n`);
  process.exit(code);
}

const program = new Command('taskwire')
  .description('Long-running tasks with live progress over Phoenix Channels')
  // Usage errors exit 64 (EX_USAGE), apart from the client commands' 1-4 (see connect.ts).
  .exitOverride();

program
  .command('start')
  .description('start the server (embedded PostgreSQL unless DATABASE_URL is set)')
  .option('-p, --port <port>', 'HTTP port (PORT)', int)
  .option('-d, --data-dir <dir>', 'data directory (TASKWIRE_DATA_DIR)')
  .option('-t, --tasks <modules...>', 'task modules to load (TASKWIRE_TASKS)')
  .option(
    '-n, --processes <n>',
    'server processes sharing the port, joined over the bus; `auto`: one per CPU (TASKWIRE_PROCESSES)',
  )
  .action(async (opts: { port?: number; dataDir?: string; tasks?: string[]; processes?: string }) => {
    const env = { ...process.env };
    if (opts.port !== undefined) env.PORT = String(opts.port);
    if (opts.dataDir) env.TASKWIRE_DATA_DIR = opts.dataDir;
    if (opts.tasks) env.TASKWIRE_TASKS = [env.TASKWIRE_TASKS, ...opts.tasks].filter(Boolean).join(',');
    if (opts.processes !== undefined) env.TASKWIRE_PROCESSES = opts.processes;
    if (env.TASKWIRE_LOG_PRETTY === undefined && process.stdout.isTTY) env.TASKWIRE_LOG_PRETTY = 'true';
    // Loaded here so that the client commands start without the server's dependencies.
    const { default: cluster } = await import('node:cluster');
    let processes: number;
    try {
      processes = loadConfig(env).processes;
    } catch (err) {
      fail(err instanceof Error ? err.message : String(err));
    }
    if (cluster.isPrimary && processes > 1) return startGroup(env, processes);
    let server: TaskwireServer;
    try {
      const { startServer } = await import('../server/index.ts');
      server = await startServer({ env });
    } catch (err) {
      fail(err instanceof Error ? err.message : String(err));
    }
    if (cluster.isWorker) {
      // One of `--processes`: the primary prints the banner and decides when to stop (SIGTERM);
      // a terminal's Ctrl-C reaches the primary too, so the worker leaves SIGINT to it.
      process.on('SIGINT', () => {});
      process.on('SIGHUP', () => {});
      process.on('SIGTERM', () => {
        server.stop().then(
          () => process.exit(0),
          (err: unknown) => fail(`stop failed: ${(err as Error).message}`),
        );
      });
      process.send?.({ type: 'taskwire:ready', url: server.url, nodeId: server.nodeId });
      return;
    }
    onSignals(() => server.stop());
    const secretNote = server.config.secret ? '' : ` (secret kept in ${server.config.dataDir}/secret)`;
    printBanner(
      server.url,
      await server.tokens.mint('dev', 7 * 24 * 3600),
      await server.tokens.mint('dev', DASHBOARD_TOKEN_TTL_S, { admin: true }),
      secretNote,
    );
  });

/** `start --processes N`: N workers on one port, one embedded database (unless DATABASE_URL). */
async function startGroup(env: Record<string, string | undefined>, count: number): Promise<void> {
  const { startProcessGroup } = await import('../server/processes.ts');
  const { createLogger } = await import('../server/logger.ts');
  const config = loadConfig(env);
  let group: Awaited<ReturnType<typeof startProcessGroup>>;
  try {
    group = await startProcessGroup({
      count,
      env,
      exec: process.argv[1],
      args: ['start'],
      log: createLogger(config).child({ node: 'primary' }),
    });
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  onSignals(() => group.stop());
  const secretNote = config.secret ? '' : ` (secret kept in ${group.dataDir}/secret)`;
  const tokens = new Tokens(group.secret);
  printBanner(
    group.url,
    await tokens.mint('dev', 7 * 24 * 3600),
    await tokens.mint('dev', DASHBOARD_TOKEN_TTL_S, { admin: true }),
    secretNote,
    `${count} processes, joined over the bus`,
  );
}

function onSignals(stop: () => Promise<void>): void {
  let stopAsked = 0;
  const shutdown = (signal: string) => {
    // One request to stop often arrives twice at once: a terminal's Ctrl-C (or a supervisor's
    // kill of the whole group) reaches both this process and bin/taskwire.js, which forwards it.
    if (stopAsked !== 0 && Date.now() - stopAsked < SAME_REQUEST_MS) return;
    if (stopAsked !== 0) fail(`second ${signal}: stopping at once`, 1);
    stopAsked = Date.now();
    stop().then(
      () => process.exit(0),
      (err: unknown) => fail(`stop failed: ${(err as Error).message}`),
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => shutdown(signal));
}

/** The dashboard link's admin token lives this long (it is in a terminal's scrollback). */
const DASHBOARD_TOKEN_TTL_S = 3600;

/**
 * Printed to the terminal, never logged. The dashboard link carries an admin token in its
 * fragment (`#token=`), which browsers never send to a server nor put in a Referer.
 */
function printBanner(
  url: string,
  token: string,
  adminToken: string,
  secretNote: string,
  shape?: string,
): void {
  process.stdout.write(
    [
      '',
      `taskwire is listening on ${url}  (WebSocket: ${url.replace(/^http/, 'ws')}/socket)${shape ? `  [${shape}]` : ''}`,
      '',
      'Dashboard (signed in as admin "dev" for 1 hour):',
      `  ${url}/dashboard#token=${adminToken}`,
      '',
      `A dev token for user "dev", valid 7 days${secretNote}:`,
      `  export TOKEN=${token}`,
      '',
      'Try it (in another terminal):',
      '  npx taskwire submit demo --watch',
      `  curl -s -X POST ${url}/api/tasks -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"steps": 5, "interval_ms": 1000}'`,
      `  curl -s ${url}/api/tasks -H "Authorization: Bearer $TOKEN"`,
      '',
      'Mint another token: npx taskwire token --user alice',
      '',
    ].join('\n'),
  );
}

program
  .command('token')
  .description('mint a token (uses TASKWIRE_SECRET, else the secret in the data directory)')
  .requiredOption('-u, --user <id>', 'the user id (the token sub)')
  .option('--ttl <seconds>', 'lifetime in seconds (default: 7 days; 0 = no expiry)', int, 7 * 24 * 3600)
  .option('--admin', "with the admin role: every user's tasks, admin:tasks, the dashboard's all-users view")
  .option('-d, --data-dir <dir>', 'data directory (TASKWIRE_DATA_DIR)')
  .action(async (opts: { user: string; ttl: number; admin?: boolean; dataDir?: string }) => {
    const env = { ...process.env };
    if (opts.dataDir) env.TASKWIRE_DATA_DIR = opts.dataDir;
    const config = loadConfig(env);
    const [secret] = config.secret ? [config.secret] : await loadOrCreateSecret(config.dataDir);
    process.stdout.write(
      `${await new Tokens(secret).mint(opts.user, opts.ttl === 0 ? undefined : opts.ttl, { admin: opts.admin })}\n`,
    );
  });

// The client commands (and the client SDK they use) are not loaded to start the server: a server
// process keeps every module it loaded for good. `taskwire start --help` lists start's options
// only either way; any other first argument (`--help` too) gets every command.
if (process.argv[2] !== 'start') {
  const { addClientCommands } = await import('./commands.ts');
  addClientCommands(program);
}

program.parseAsync().catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  fail(err instanceof ConfigError || err instanceof Error ? err.message : String(err));
});
