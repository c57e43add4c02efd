// Builds the web dashboard: src/dashboard (Preact, @tanstack/virtual-core, uPlot; TypeScript) into
// one ES module, one stylesheet and index.html, with esbuild, from npm packages only. The server
// serves the result at /dashboard. Usage: node scripts/build-dashboard.ts [outDir]
// (default dist/dashboard); scripts/build.ts runs it for `npm run build` and `prepare`.
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const source = path.join(root, 'src/dashboard');

/** Builds into `outDir`; returns the bytes of each file written. */
export async function buildDashboard(outDir: string): Promise<Record<string, number>> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: path.join(source, 'main.tsx') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    minify: !process.env.DASHBOARD_NO_MINIFY, // DASHBOARD_NO_MINIFY=1: readable names for a profile
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  copyFileSync(path.join(source, 'index.html'), path.join(outDir, 'index.html'));
  const sizes: Record<string, number> = {};
  for (const file of ['index.html', 'app.js', 'app.css'])
    sizes[file] = statSync(path.join(outDir, file)).size;
  return sizes;
}

if (import.meta.filename === process.argv[1]) {
  const out = path.resolve(root, process.argv[2] ?? 'dist/dashboard');
  const sizes = await buildDashboard(out);
  process.stdout.write(
    `dashboard built in ${path.relative(root, out)}: ${Object.entries(sizes)
      .map(([f, n]) => `${f} ${(n / 1024).toFixed(1)} KiB`)
      .join(', ')}\n`,
  );
}
