// The published package, as a user's project meets it: the tarball `npm pack` makes (built from
// the current sources), installed into an empty project, must run the CLI, embed the server
// with a user-defined task type, drive it with the client SDK, and typecheck against its
// declarations. Node refuses to strip types under node_modules, so this is what proves that the
// built dist/ is complete.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CLONE_ENGINES, PUBLISHED_ENGINES, publishedManifest } from '../../scripts/publish-manifest.ts';
import { Tokens } from '../../src/auth/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { spawnServer } from '../helpers/process.ts';
import { TEST_SECRET } from '../helpers/server.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE = process.execPath;
/** npm as installed beside the Node that runs the tests (or the one on PATH). */
const NPM = process.env.npm_execpath ?? 'npm';

let tmp: string;
let app: string;
let files: string[];
let db: TestDatabase;

function npm(args: string[], cwd: string) {
  const [cmd, pre] = NPM.endsWith('.js') ? [NODE, [NPM]] : [NPM, []];
  return run(cmd, [...pre, ...args], { cwd, timeout: 240_000, maxBuffer: 16 << 20 });
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'taskwire-package-'));
  db = await createTestDatabase();
  // The package directory: what `files` names, with dist/ built from the current sources.
  const pkg = path.join(tmp, 'pkg');
  await mkdir(pkg);
  const manifest = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  for (const entry of [...manifest.files, 'README.md']) {
    if (entry === 'dist/') continue;
    await cp(path.join(ROOT, entry), path.join(pkg, entry), { recursive: true });
  }
  // The manifest as `npm pack` writes it (its prepack step; --ignore-scripts skips that below).
  await writeFile(path.join(pkg, 'package.json'), JSON.stringify(publishedManifest(manifest), null, 2));
  await run(NODE, [path.join(ROOT, 'scripts/build.ts'), path.join(pkg, 'dist')], { cwd: ROOT });
  const packed = JSON.parse(
    (await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], pkg)).stdout,
  );
  files = packed[0].files.map((f: { path: string }) => f.path);
  const tarball = path.join(tmp, packed[0].filename);

  app = path.join(tmp, 'app');
  await mkdir(app);
  await writeFile(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module' }),
  );
  // From npm's cache (the project's own install filled it); no embedded PostgreSQL binaries.
  await npm(
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      '--omit=optional',
      tarball,
    ],
    app,
  );
});

after(async () => {
  await db?.drop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('the tarball claims the Node the installed package needs (the clone claims the one npm brings)', async () => {
  const installed = JSON.parse(await readFile(path.join(app, 'node_modules/taskwire/package.json'), 'utf8'));
  assert.deepEqual(installed.engines, PUBLISHED_ENGINES);
  assert.deepEqual(PUBLISHED_ENGINES, { node: '>=22.18' }, 'stack.md: the package ships engines >= 22.18');
  const clone = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
  assert.deepEqual(clone.engines, CLONE_ENGINES);
  assert.equal(clone.scripts.prepack, 'node scripts/publish-manifest.ts apply');
  assert.equal(clone.scripts.postpack, 'node scripts/publish-manifest.ts restore');
});

test('the tarball holds the built package, not the sources or the tests', () => {
  for (const f of [
    'bin/taskwire.js',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/client/index.js',
    'dist/react/index.js',
    'dist/react/index.d.ts',
    'dist/bundle/main.js',
    'dist/bundle/index.js',
    'dist/bundle/migrations/001_tasks.sql',
    'dist/dashboard/index.html',
    'dist/dashboard/app.js',
    'dist/dashboard/app.css',
    'docs/api.md',
    'examples/my-tasks.js',
    'README.md',
  ])
    assert.ok(files.includes(f), `${f} is packed`);
  assert.deepEqual(
    files.filter((f) => /^(src|test|bench|scripts)\//.test(f)),
    [],
    'no sources, tests or benchmarks',
  );
});

test('the installed CLI runs from dist/ and mints a token', async () => {
  const { stdout } = await run(
    NODE,
    [path.join(app, 'node_modules/taskwire/bin/taskwire.js'), 'token', '--user', 'alice'],
    {
      cwd: app,
      env: { ...process.env, TASKWIRE_SECRET: TEST_SECRET },
    },
  );
  assert.match(stdout.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
});

/** The installed `taskwire start`, run in the app. */
function startInstalled(env: Record<string, string>, nodeArgs: string[] = []) {
  return spawnServer({
    databaseUrl: db.url,
    nodeId: 'installed',
    bin: path.join(app, 'node_modules/taskwire/bin/taskwire.js'),
    cwd: app,
    nodeArgs,
    env: { LOG_LEVEL: 'info', ...env },
  });
}

test("the installed server runs as one bundle, and a task module's import of 'taskwire' shares it", async () => {
  // A user's task module, and a preload that records every file the process loads (not just resolves).
  await writeFile(
    path.join(app, 'tasks.mjs'),
    `import { defineTask } from 'taskwire';
export const hello = defineTask({
  name: 'hello',
  async run(ctx) {
    ctx.progress(0.5, 'halfway');
    return { hello: ctx.input.name };
  },
});
`,
  );
  const record = path.join(app, 'loaded.json');
  await writeFile(
    path.join(app, 'record-loads.mjs'),
    `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = new Set();
registerHooks({ load(url, c, next) { if (url.startsWith('file:')) loaded.add(url); return next(url, c); } });
process.on('exit', () => writeFileSync(${JSON.stringify(record)}, JSON.stringify([...loaded])));
`,
  );
  const server = await startInstalled({ TASKWIRE_TASKS: './tasks.mjs' }, ['--import', './record-loads.mjs']);
  try {
    const token = await new Tokens(TEST_SECRET).mint('alice', 600);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created = await fetch(`${server.url}/api/tasks`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ type: 'hello', name: 'bundle' }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { task_id } = (await created.json()) as { task_id: string };
    let task: { status: string; result: unknown } | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      task = (await (
        await fetch(`${server.url}/api/tasks/${task_id}`, { headers: auth })
      ).json()) as typeof task;
      if (task?.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(task?.result, { hello: 'bundle' }, `task ${JSON.stringify(task)}`);
    // Swagger UI's files come from its package directory, found at run time (not from the bundle's).
    const ui = await fetch(`${server.url}/docs/static/swagger-ui-bundle.js`);
    assert.equal(ui.status, 200);
    assert.ok((await ui.arrayBuffer()).byteLength > 100_000);
  } finally {
    server.kill('SIGTERM');
    await server.exited;
  }
  const loaded = (JSON.parse(await readFile(record, 'utf8')) as string[]).map((u) =>
    path.relative(app, new URL(u).pathname),
  );
  const packages = loaded.filter((f) => f.startsWith('node_modules/'));
  assert.ok(packages.includes('node_modules/taskwire/dist/bundle/main.js'), packages.join('\n'));
  assert.ok(
    packages.includes('node_modules/taskwire/dist/bundle/index.js'),
    'the task module got the bundle',
  );
  assert.deepEqual(
    packages.filter(
      (f) => !/^node_modules\/taskwire\/(bin\/taskwire\.js|dist\/bundle\/[\w.-]+\.js)$/.test(f),
    ),
    [],
    'no other package file, and none of the unbundled dist/ (a second copy of the server)',
  );
});

test('the installed server prints pretty logs when asked (pino-pretty, loaded from node_modules)', async () => {
  const server = await startInstalled({ TASKWIRE_LOG_PRETTY: 'true' });
  server.kill('SIGTERM');
  await server.exited;
  assert.match(server.output(), /INFO.*taskwire listening/);
  assert.doesNotMatch(server.output(), /^\{"level"/m, 'no JSON lines');
});

test('an app embeds the installed server with its own task type and drives it with the SDK', async () => {
  const script = `
    import { defineTask, startServer } from 'taskwire';
    import { createClient } from 'taskwire/client';
    const double = defineTask({
      name: 'double',
      async run(ctx) {
        ctx.progress(0.5, 'halfway');
        return { n: ctx.input.n * 2 };
      },
    });
    const server = await startServer({
      env: {},
      config: { port: 0, host: '127.0.0.1', databaseUrl: process.argv[2], secret: process.argv[3], logLevel: 'silent' },
      tasks: [double],
    });
    const tw = createClient({ url: server.url, token: await server.tokens.mint('alice', 60) });
    try {
      const task = await tw.submit({ type: 'double', n: 21 });
      const result = await task.result();
      process.stdout.write(JSON.stringify({ result, status: task.status, seq: task.state.seq }));
    } finally {
      tw.close();
      await server.stop();
    }
  `;
  await writeFile(path.join(app, 'embed.mjs'), script);
  const { stdout } = await run(NODE, ['embed.mjs', db.url, TEST_SECRET], { cwd: app, timeout: 60_000 });
  const out = JSON.parse(stdout);
  assert.deepEqual(out.result, { n: 42 });
  assert.equal(out.status, 'completed');
  assert.ok(out.seq >= 3, `created, started, progress and completed: seq ${out.seq}`);
});

test("the package's type declarations check a user's TypeScript", async () => {
  await writeFile(
    path.join(app, 'tasks.ts'),
    `import { defineTask, type Task } from 'taskwire';
import { createClient, TaskFailedError } from 'taskwire/client';
export const resize = defineTask<{ width: number }>({
  name: 'resize',
  async run(ctx) {
    ctx.progress(1, \`to \${ctx.input.width}px\`);
    return { width: ctx.input.width };
  },
});
export async function submit(url: string, token: string): Promise<Task['status']> {
  const tw = createClient({ url, token });
  const task = await tw.submit({ type: 'resize', width: 640 });
  task.on('progress', (e) => e.progress.toFixed(2));
  await task.result().catch((err: unknown) => { if (!(err instanceof TaskFailedError)) throw err; });
  return task.status;
}
`,
  );
  await writeFile(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2022', 'dom'],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      files: ['tasks.ts'],
    }),
  );
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  await run(NODE, [tsc, '-p', 'tsconfig.json'], { cwd: app }).catch((err) => {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  });
  // And it really checks: a wrong input type is an error.
  await writeFile(
    path.join(app, 'tasks.ts'),
    `import { defineTask } from 'taskwire';
defineTask<{ width: number }>({ name: 'x', async run(ctx) { const s: string = ctx.input.width; return s; } });
`,
  );
  await assert.rejects(run(NODE, [tsc, '-p', 'tsconfig.json'], { cwd: app }), (err: { stdout: string }) =>
    /TS2322/.test(err.stdout),
  );
});
