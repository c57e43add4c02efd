// How the client commands reach a server: --url / TASKWIRE_URL, --token / TASKWIRE_TOKEN, else a
// dev token minted from the local secret (so `taskwire submit demo --watch` works right after
// `npm start`), and the exit codes every command shares.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SECRET_FILE, Tokens } from '../auth/index.ts';
import { TaskwireApiError, TaskwireConnectionError, TaskwireError } from '../client/index.ts';
import { loadConfig } from '../config/index.ts';
import { EXIT } from './exit.ts';

export const DEFAULT_URL = 'http://127.0.0.1:4000';
/** The user `npm start` prints a token for. */
export const DEV_USER = 'dev';

/** An error with the exit code and the one line to print. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface ClientFlags {
  url: string;
  token?: string;
  json?: boolean;
}

/**
 * The token to use: the flag or TASKWIRE_TOKEN, else one for user "dev" minted from
 * TASKWIRE_SECRET or the secret `npm start` keeps in the data directory.
 */
export async function resolveToken(
  flags: ClientFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (flags.token) return flags.token;
  let secret: string | undefined;
  try {
    const config = loadConfig(env);
    secret = config.secret ?? (await readFile(path.join(config.dataDir, SECRET_FILE), 'utf8')).trim();
  } catch {
    secret = undefined;
  }
  if (!secret || secret.length < 16) {
    throw new CliError(
      'no token: pass --token or set TASKWIRE_TOKEN (mint one with `npx taskwire token --user <id>`)',
      EXIT.unauthorized,
    );
  }
  return new Tokens(secret).mint(DEV_USER, 3600);
}

/** Maps any error of a client command to its message and exit code. */
export function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof TaskwireConnectionError) {
    return new CliError(err.message, EXIT.unreachable);
  }
  if (err instanceof TaskwireApiError) {
    if (err.status === 401) {
      return new CliError(
        `unauthorized: ${err.message} (pass a valid --token or TASKWIRE_TOKEN)`,
        EXIT.unauthorized,
      );
    }
    if (err.status === 404) return new CliError(`not found: ${err.message}`, EXIT.notFound);
    const details = Array.isArray(err.details)
      ? (err.details as { field?: string; message?: string }[])
          .map((d) => `${d.field ?? '?'} ${d.message ?? ''}`.trim())
          .join('; ')
      : '';
    return new CliError(`${err.code}: ${err.message}${details ? ` (${details})` : ''}`, EXIT.failed);
  }
  if (err instanceof TaskwireError) return new CliError(err.message, EXIT.failed);
  return new CliError(err instanceof Error ? err.message : String(err), EXIT.failed);
}
