// The development secret: when TASKWIRE_SECRET is unset, one is generated once and kept in the
// data directory (mode 0600), so tokens survive restarts.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const SECRET_FILE = 'secret';

/** Returns [secret, generated now]. */
export async function loadOrCreateSecret(dataDir: string): Promise<[string, boolean]> {
  const file = path.join(dataDir, SECRET_FILE);
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing.length >= 16) return [existing, false];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  try {
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return [secret, true];
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      return [(await readFile(file, 'utf8')).trim(), false];
    throw err;
  }
}
