#!/usr/bin/env node
// The `taskwire` command. A checkout runs its TypeScript sources directly on Node >= 22.18
// (type stripping); started by an older Node, it runs itself again on the Node 24 that npm
// installed, as a child it passes signals to. An installed package runs the JavaScript built
// into dist/ (Node does not strip types under node_modules).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const checkout =
  existsSync(path.join(root, 'src', 'cli', 'main.ts')) && !root.split(path.sep).includes('node_modules');

/** Signals a supervisor or a terminal sends to stop (or resize) a process: all go to the child. */
const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGWINCH'];

/**
 * Runs `node` on this script's arguments and waits. Signals sent to this process go to the child
 * (it drains and exits); this process then exits with the child's status, or dies of its signal.
 */
function runOn(node) {
  const child = spawn(node, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, TASKWIRE_REEXEC: '1' },
  });
  const forward = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  child.on('error', (err) => {
    process.stderr.write(`taskwire: cannot run ${node}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const s of FORWARDED) process.off(s, forward);
    if (signal)
      process.kill(process.pid, signal); // die the same way, now that no handler stops it
    else process.exit(code ?? 1);
  });
}

if (!checkout) {
  await import('../dist/cli/main.js');
} else {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 18)) {
    const local = path.join(root, 'node_modules', 'node', 'bin', 'node');
    if (!existsSync(local) || process.env.TASKWIRE_REEXEC) {
      process.stderr.write(
        `taskwire needs Node >= 22.18 (this is ${process.version}); run \`npm install\` first.\n`,
      );
      process.exit(1);
    }
    runOn(local);
  } else {
    await import('../src/cli/main.ts');
  }
}
