// Property: no request to the HTTP API gets a 500 or a body outside api.md's error shape, and
// nothing half-written stays behind a refusal.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { fcParams } from './settings.ts';

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ maxCreatesPerMinute: 1_000_000, bodyLimitBytes: 4096 });
  token = await t.token('fuzzer');
});
after(() => t.stop());

const paths = fc.oneof(
  fc.constantFrom(
    '/api/tasks',
    '/api/tasks/',
    '/healthz',
    '/readyz',
    '/api/tasks?limit=5',
    '/api/tasks?cursor=x',
  ),
  fc.uuid().map((id) => `/api/tasks/${id}`),
  fc.uuid().map((id) => `/api/tasks/${id}/cancel`),
  fc.uuid().map((id) => `/api/tasks/${id}/events`),
  fc.string().map((s) => `/api/tasks/${encodeURIComponent(s)}`),
  fc
    .tuple(fc.constantFrom('status', 'type', 'limit', 'cursor', 'x'), fc.string())
    .map(([k, v]) => `/api/tasks?${k}=${encodeURIComponent(v)}`),
);
const bodies = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 200 }),
  fc.json().map((s) => s),
  fc
    .record(
      { type: fc.anything(), steps: fc.anything(), interval_ms: fc.anything(), max_attempts: fc.anything() },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o)),
  fc.string({ minLength: 5000, maxLength: 6000 }),
);

test('random requests never get a 500, and every error has the contract shape', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
      paths,
      bodies,
      fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined),
      fc.constantFrom('good', 'none', 'garbage'),
      async (method, path, body, contentType, auth) => {
        const headers: Record<string, string> = {};
        if (contentType && body !== undefined) headers['content-type'] = contentType;
        if (auth === 'good') headers.authorization = `Bearer ${token}`;
        if (auth === 'garbage') headers.authorization = 'Bearer x.y.z';
        const hasBody = body !== undefined && method !== 'GET';
        const res = await fetch(`${t.url}${path}`, {
          method,
          headers,
          body: hasBody ? body : undefined,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        assert.ok(res.status < 500, `${method} ${path} → ${res.status} ${text.slice(0, 200)}`);
        if (res.status >= 400) {
          const parsed = JSON.parse(text);
          assert.equal(typeof parsed.error?.code, 'string', text);
          assert.equal(typeof parsed.error?.message, 'string', text);
          assert.doesNotMatch(text, /\bat .+\.(ts|js):\d+/, 'no stack trace');
        }
      },
    ),
    fcParams,
  );
  const res = await t.api(token, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 });
  assert.equal(res.status, 201, 'the server still serves');
});
