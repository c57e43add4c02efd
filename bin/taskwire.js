#!/usr/bin/env node
// The `taskwire` command. A checkout runs its TypeScript sources directly on Node >= 22.18
// (type stripping); started by an older Node, it re-runs itself on the Node 24 that npm
// installed. An installed package runs the JavaScript built into dist/ (Node does not strip
// types under node_modules).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const checkout =
  existsSync(path.join(root, 'src', 'cli', 'main.ts')) && !root.split(path.sep).includes('node_modules');

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
    const result = spawnSync(local, process.argv.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, TASKWIRE_REEXEC: '1' },
    });
    process.exit(result.status ?? 1);
  }
  await import('../src/cli/main.ts');
}
