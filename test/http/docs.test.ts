// API docs: /docs serves swagger-ui over an OpenAPI document generated from the routes, and that
// document matches api.md: every route of its HTTP table, its Task fields, its error codes.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The project's copy of the contract, so this test runs on any clone. */
const API_MD = path.resolve(here, '../../docs/api.md');
/** The team's source of the contract, beside the project on a developer's machine. */
const SHARED_API_MD = path.resolve(here, '../../../shared/docs/api.md');

/** The `METHOD /path` cells of api.md's "HTTP API" table, with `:id` as OpenAPI's `{id}`. */
function apiMdRoutes(md: string): { method: string; path: string }[] {
  const routes: { method: string; path: string }[] = [];
  for (const line of md.split('\n')) {
    const m = line.match(/^\|\s*`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`\s*\|/);
    if (m) routes.push({ method: m[1].toLowerCase(), path: m[2].replace(/:(\w+)/g, '{$1}') });
  }
  return routes;
}

/** The field names of api.md's Task example (a JSON block with // comments). */
function apiMdTaskFields(md: string): string[] {
  const block = md.slice(md.indexOf('## Task')).match(/```json\n([\s\S]*?)```/)?.[1] ?? '';
  return [...block.matchAll(/^\s*"(\w+)":/gm)].map((m) => m[1]);
}

let t: TestServer;
let spec: any;
before(async () => {
  t = await startTestServer();
  const res = await fetch(`${t.url}/docs/json`);
  assert.equal(res.status, 200);
  spec = await res.json();
});
after(() => t.stop());

test('every route in api.md appears in the generated OpenAPI document', () => {
  const routes = apiMdRoutes(readFileSync(API_MD, 'utf8'));
  assert.ok(routes.length >= 8, `parsed api.md's table: ${routes.length} routes`);
  const missing = routes.filter((r) => !spec.paths?.[r.path]?.[r.method]);
  assert.deepEqual(missing, [], 'routes of api.md missing from /docs/json');
  for (const r of routes)
    assert.ok(spec.paths[r.path][r.method].summary, `${r.method} ${r.path} has a summary`);
});

test("the document's Task has exactly api.md's fields, and its error codes include api.md's", () => {
  const md = readFileSync(API_MD, 'utf8');
  const fields = apiMdTaskFields(md);
  assert.ok(fields.includes('task_id') && fields.includes('seq'), `parsed the Task block: ${fields}`);
  const task = spec.paths['/api/tasks/{id}'].get.responses['200'].content['application/json'].schema;
  assert.deepEqual(Object.keys(task.properties).sort(), [...fields].sort());
  const codes = [...md.matchAll(/`([a-z_]+)` \((\d{3})/g)].map((m) => m[1]);
  assert.ok(codes.length >= 8, `parsed api.md's error codes: ${codes}`);
  const errorSchema = spec.paths['/api/tasks'].post.responses['422'].content['application/json'].schema;
  const documented = errorSchema.properties.error.properties.code.enum;
  for (const code of codes) assert.ok(documented.includes(code), `error code ${code} documented`);
});

test('the document is OpenAPI 3.1 from the route schemas, with bearer auth on /api routes only', () => {
  assert.equal(spec.openapi, '3.1.0');
  const create = spec.paths['/api/tasks'].post;
  // From the route's own body schema (the transform only adds docs).
  assert.equal(create.requestBody.content['application/json'].schema.properties.max_attempts.maximum, 25);
  assert.deepEqual(Object.keys(create.responses).sort(), [
    '200',
    '201',
    '400',
    '401',
    '413',
    '415',
    '422',
    '429',
    '503',
  ]);
  assert.deepEqual(create.security, [{ bearer: [] }]);
  const list = spec.paths['/api/tasks'].get;
  assert.deepEqual(list.parameters.map((p: { name: string }) => p.name).sort(), [
    'all',
    'cursor',
    'limit',
    'owner',
    'status',
    'type',
  ]);
  assert.equal(spec.paths['/healthz'].get.security, undefined);
  assert.equal(spec.components.securitySchemes.bearer.scheme, 'bearer');
  assert.ok(
    !Object.keys(spec.paths).some((p) => p.startsWith('/docs')),
    'the docs do not document themselves',
  );
});

test('/docs serves the UI without a token', async () => {
  const res = await fetch(`${t.url}/docs`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await res.text(), /swagger/i);
});

test('documenting the routes changes nothing they answer', async () => {
  const token = await t.token('alice');
  const created = await t.createTask(token, { steps: 1, interval_ms: 0, extra: { nested: [1, 2] } });
  assert.deepEqual(created.input, { steps: 1, interval_ms: 0, extra: { nested: [1, 2] } });
  const bad = await t.api(token, 'GET', '/api/tasks?limit=0');
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.code, 'validation_failed');
});

test("the project's docs/api.md is the team's api.md, word for word", {
  skip: existsSync(SHARED_API_MD) ? false : `no shared api.md at ${SHARED_API_MD}`,
}, () => {
  assert.equal(readFileSync(API_MD, 'utf8'), readFileSync(SHARED_API_MD, 'utf8'));
});
