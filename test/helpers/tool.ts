// Runs one of bench/tools/ as its own process, as the README's command does, for tests at tiny size.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

/** Runs bench/tools/<name> with `args`; asserts it exits 0 and returns its last line (JSON), parsed. */
export async function runTool(name: string, args: string[]): Promise<Record<string, any>> {
  const tool = path.resolve(import.meta.dirname, '../../bench/tools', name);
  const child = spawn(process.execPath, [tool, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `${name} exited ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}');
}
