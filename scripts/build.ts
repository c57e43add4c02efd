// Builds the publishable package into dist/:
// - the server bundled by esbuild into dist/bundle (scripts/build-server.ts, with the SQL
//   migrations it reads at run time): what the `taskwire` command runs and what `import 'taskwire'`
//   loads;
// - JavaScript and type declarations compiled from src/ by tsc (tsconfig.build.json): the
//   declarations, and the client SDK and React hook modules;
// - the web dashboard bundled into dist/dashboard (scripts/build-dashboard.ts).
// Node refuses to strip types from files under node_modules, so an installed taskwire runs from
// dist/; a checkout runs its build while it is fresh, else src/ directly (bin/taskwire.js).
// Usage: node scripts/build.ts [outDir]   (default: dist)
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildDashboard } from './build-dashboard.ts';
import { buildServer } from './build-server.ts';

const root = path.resolve(import.meta.dirname, '..');
const target = path.resolve(root, process.argv[2] ?? 'dist');
// Built beside the target, then swapped in: a server or a test running from the old build while
// this runs (`npx taskwire` with a fresh npm cache runs `prepare` in the checkout) never finds the
// directory half written. The bundle's file names are content hashes, so a process that loaded the
// old build finds its lazy chunks under the same names in the new one (the sources unchanged).
const sibling = (what: string) =>
  path.join(path.dirname(target), `.${path.basename(target)}.${what}-${process.pid}`);
const out = sibling('building');
rmSync(out, { recursive: true, force: true });
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', out], {
  cwd: root,
  stdio: 'inherit',
});
await buildServer(path.join(out, 'bundle'));
await buildDashboard(path.join(out, 'dashboard'));
const old = sibling('old');
if (existsSync(target)) renameSync(target, old);
renameSync(out, target);
rmSync(old, { recursive: true, force: true });
