#!/usr/bin/env node
// The `taskwire` command. A checkout runs its build (dist/bundle, the server bundled by
// scripts/build-server.ts, which `npm install` makes) while no file under src/ is newer than it,
// else its TypeScript sources directly on Node >= 22.18 (type stripping: the same code, but about
// 30 MB more resident memory for a server: the stripper's WebAssembly, and ~1,500 module files
// instead of one bundle); started by an older Node, it runs itself again on the Node 24 that npm
// installed, as a child it passes signals to. An installed package runs the bundle (Node does not
// strip types under node_modules).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const checkout =
  existsSync(path.join(root, 'src', 'cli', 'main.ts')) && !root.split(path.sep).includes('node_modules');

/**
 * dist/bundle/main.js when the build is at least as new as every file and directory under src/ (an
 * edit, a checkout or a deleted file makes it stale); undefined otherwise.
 */
function freshBuild() {
  const built = path.join(root, 'dist', 'bundle', 'main.js');
  let builtAt;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {
    return undefined;
  }
  const newer = (dir) =>
    statSync(dir).mtimeMs > builtAt ||
    readdirSync(dir, { withFileTypes: true }).some((entry) =>
      entry.isDirectory()
        ? newer(path.join(dir, entry.name))
        : statSync(path.join(dir, entry.name)).mtimeMs > builtAt,
    );
  return newer(path.join(root, 'src')) ? undefined : built;
}

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
  await import('../dist/bundle/main.js');
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
    const build = freshBuild();
    await import(build ? pathToFileURL(build).href : '../src/cli/main.ts');
  }
}
