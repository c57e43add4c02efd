// What each module costs to load, each in a fresh process: RSS (VmRSS of /proc/self/status) and
// V8 heap used after a memory-reducing GC (V8's last-resort flavour: it also shrinks the young
// generation the imports grew, which would otherwise count as the first import's cost), before and
// after `await import(spec)`, minus the same process importing nothing. Figures overlap (fastify and @fastify/swagger share ajv, fast-json-stringify
// and so on), so they are each module's cost loaded first and alone, not shares of a total.
//   node bench/tools/import-cost.ts [--chain] [spec ...]    (default: the server's heavy imports)
// --chain imports the specs one after another in one process instead: each row is then what that
// module added on top of the ones above it (its marginal cost; the rows add up to the whole).
// A spec is a package name, or a path relative to the checkout (src/..., dist/...). The last
// line is JSON: [{spec, rss_mb, heap_mb, modules}].
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { table } from '../lib/report.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

const DEFAULT_SPECS = [
  'fastify',
  '@fastify/swagger',
  '@fastify/swagger-ui',
  '@fastify/static',
  'typebox',
  'typebox/compile',
  'graphile-worker',
  'pg',
  'pino',
  'prom-client',
  'ioredis',
  '@nats-io/transport-node',
  'commander',
  'jose',
  'ws',
  'src/bus/transports/index.ts',
  'src/http/openapi.ts',
  'src/cli/commands.ts',
  'src/server/index.ts',
  ...(existsSync(path.join(ROOT, 'dist/server/index.js')) ? ['dist/server/index.js'] : []),
];

// Runs in the child: the figures after a full GC, then the import, then again. The module count
// comes from a load hook (module.registerHooks sees both import and require).
const CHILD = `
import { readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
let modules = 0;
registerHooks({ load(url, ctx, next) { modules++; return next(url, ctx); } });
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const settle = async () => { for (let i = 0; i < 2; i++) { gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }); await new Promise((r) => setTimeout(r, 100)); } };
const out = [];
await settle();
let before = { rss: rss(), heap: process.memoryUsage().heapUsed, modules };
for (const spec of process.argv.slice(1)) {
  if (spec !== '-') await import(spec);
  await settle();
  const after = { rss: rss(), heap: process.memoryUsage().heapUsed, modules };
  out.push({ rss: after.rss - before.rss, heap: after.heap - before.heap, modules: after.modules - before.modules });
  before = after;
}
process.stdout.write(JSON.stringify(out));
`;

interface Cost {
  rss: number;
  heap: number;
  modules: number;
}

/** Imports `specs` in turn in one fresh process; the cost of each on top of those before it. */
function measure(specs: string[]): Cost[] {
  const targets = specs.map((spec) =>
    /^(src|dist|bench)\//.test(spec) ? pathToFileURL(path.join(ROOT, spec)).href : spec,
  );
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', '--input-type=module', '-e', CHILD, ...targets],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  return JSON.parse(out);
}

const args = process.argv.slice(2);
const chain = args.includes('--chain');
const given = args.filter((a) => a !== '--chain');
const specs = given.length > 0 ? given : DEFAULT_SPECS;
const MB = 1024 * 1024;
const costs: Cost[] = chain
  ? measure(['-', ...specs])
  : [measure(['-'])[0], ...specs.map((spec) => measure(['-', spec])[1])];
// The first figure is an empty step (GC noise); alone, each spec's process had one too.
const rows = specs.map((spec, i) => ({
  spec,
  rss_mb: Number((costs[i + 1].rss / MB).toFixed(1)),
  heap_mb: Number((costs[i + 1].heap / MB).toFixed(1)),
  modules: costs[i + 1].modules,
}));
console.log(
  table([
    [
      chain ? 'module (on top of those above)' : 'module (alone, in a fresh process)',
      'RSS MB',
      'heap MB',
      'modules loaded',
    ],
    ...rows.map((r) => [r.spec, r.rss_mb.toFixed(1), r.heap_mb.toFixed(1), String(r.modules)]),
  ]),
);
console.log(JSON.stringify(rows));
