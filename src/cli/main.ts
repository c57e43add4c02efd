// The `taskwire` command line: start the server, mint tokens, and the client commands
// (submit, watch, ls, cancel, events; see commands.ts).
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { loadOrCreateSecret, Tokens } from '../auth/index.ts';
import { ConfigError, loadConfig } from '../config/index.ts';
import type { TaskwireServer } from '../server/index.ts';
import { addClientCommands } from './commands.ts';
import { EXIT } from './connect.ts';

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
  .action(async (opts: { port?: number; dataDir?: string; tasks?: string[] }) => {
    const env = { ...process.env };
    if (opts.port !== undefined) env.PORT = String(opts.port);
    if (opts.dataDir) env.TASKWIRE_DATA_DIR = opts.dataDir;
    if (opts.tasks) env.TASKWIRE_TASKS = [env.TASKWIRE_TASKS, ...opts.tasks].filter(Boolean).join(',');
    if (env.TASKWIRE_LOG_PRETTY === undefined && process.stdout.isTTY) env.TASKWIRE_LOG_PRETTY = 'true';
    let server: TaskwireServer;
    try {
      // Loaded here so that the client commands start without the server's dependencies.
      const { startServer } = await import('../server/index.ts');
      server = await startServer({ env });
    } catch (err) {
      fail(err instanceof Error ? err.message : String(err));
    }
    let stopAsked = 0;
    const shutdown = (signal: string) => {
      // One request to stop often arrives twice at once: a terminal's Ctrl-C (or a supervisor's
      // kill of the whole group) reaches both this process and bin/taskwire.js, which forwards it.
      if (stopAsked !== 0 && Date.now() - stopAsked < SAME_REQUEST_MS) return;
      if (stopAsked !== 0) fail(`second ${signal}: stopping at once`, 1);
      stopAsked = Date.now();
      server.stop().then(
        () => process.exit(0),
        (err: unknown) => fail(`stop failed: ${(err as Error).message}`),
      );
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => shutdown(signal));
    const token = await server.tokens.mint('dev', 7 * 24 * 3600);
    const secretNote = server.config.secret ? '' : ` (secret kept in ${server.config.dataDir}/secret)`;
    process.stdout.write(
      [
        '',
        `taskwire is listening on ${server.url}  (WebSocket: ${server.url.replace(/^http/, 'ws')}/socket)`,
        '',
        `A dev token for user "dev", valid 7 days${secretNote}:`,
        `  export TOKEN=${token}`,
        '',
        'Try it (in another terminal):',
        '  npx taskwire submit demo --watch',
        `  curl -s -X POST ${server.url}/api/tasks -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"steps": 5, "interval_ms": 1000}'`,
        `  curl -s ${server.url}/api/tasks -H "Authorization: Bearer $TOKEN"`,
        '',
        'Mint another token: npx taskwire token --user alice',
        '',
      ].join('\n'),
    );
  });

program
  .command('token')
  .description('mint a token (uses TASKWIRE_SECRET, else the secret in the data directory)')
  .requiredOption('-u, --user <id>', 'the user id (the token sub)')
  .option('--ttl <seconds>', 'lifetime in seconds (default: 7 days; 0 = no expiry)', int, 7 * 24 * 3600)
  .option('-d, --data-dir <dir>', 'data directory (TASKWIRE_DATA_DIR)')
  .action(async (opts: { user: string; ttl: number; dataDir?: string }) => {
    const env = { ...process.env };
    if (opts.dataDir) env.TASKWIRE_DATA_DIR = opts.dataDir;
    const config = loadConfig(env);
    const [secret] = config.secret ? [config.secret] : await loadOrCreateSecret(config.dataDir);
    process.stdout.write(
      `${await new Tokens(secret).mint(opts.user, opts.ttl === 0 ? undefined : opts.ttl)}\n`,
    );
  });

addClientCommands(program);

program.parseAsync().catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  fail(err instanceof ConfigError || err instanceof Error ? err.message : String(err));
});
