// Builds the publishable package: dist/ holds JavaScript and type declarations compiled from
// src/ (tsc, tsconfig.build.json), plus the SQL migrations it reads at run time, and the web
// dashboard bundled by esbuild into dist/dashboard (scripts/build-dashboard.ts). Node refuses to
// strip types from files under node_modules, so an installed taskwire runs from dist/; a
// checkout runs src/ directly and needs no build.
// Usage: node scripts/build.ts [outDir]   (default: dist)
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildDashboard } from './build-dashboard.ts';

const root = path.resolve(import.meta.dirname, '..');
const out = path.resolve(root, process.argv[2] ?? 'dist');
rmSync(out, { recursive: true, force: true });
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', out], {
  cwd: root,
  stdio: 'inherit',
});
cpSync(path.join(root, 'src/db/migrations'), path.join(out, 'db/migrations'), {
  recursive: true,
  filter: (file) => !file.endsWith('.ts'),
});
await buildDashboard(path.join(out, 'dashboard'));
