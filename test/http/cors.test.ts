// CORS: a page on an allowed origin may call the API with a bearer token (preflight included);
// other origins get no CORS headers, so the browser refuses to hand them the answer. The socket
// transports keep their own rules.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const PAGE = 'https://app.example.com';

let open: TestServer; // no allow-list: any origin (development)
let strict: TestServer; // allow-list with one origin
before(async () => {
  [open, strict] = await Promise.all([
    startTestServer(),
    startTestServer({ allowedOrigins: [PAGE, '//*.example.org'] }),
  ]);
});
after(() => Promise.all([open?.stop(), strict?.stop()]));

function preflight(url: string, origin: string, method = 'POST'): Promise<Response> {
  return fetch(url, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'authorization, content-type, idempotency-key',
    },
  });
}

test('a preflight from an allowed origin is answered with the methods and headers the SDK uses', async () => {
  const res = await preflight(`${strict.url}/api/tasks`, PAGE);
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), PAGE);
  const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/,\s*/);
  for (const h of ['authorization', 'content-type', 'idempotency-key']) assert.ok(allowed.includes(h), h);
  assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
  assert.equal(res.headers.get('access-control-allow-credentials'), null, 'tokens are headers, not cookies');
});

test('an allowed origin reads answers, errors and retry-after; a wildcard entry covers subdomains', async () => {
  const token = await strict.token('alice');
  const created = await fetch(`${strict.url}/api/tasks`, {
    method: 'POST',
    headers: { origin: PAGE, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'demo', steps: 1, interval_ms: 0 }),
  });
  assert.equal(created.status, 201);
  assert.equal(created.headers.get('access-control-allow-origin'), PAGE);
  assert.match(created.headers.get('vary') ?? '', /origin/i);
  assert.match(created.headers.get('access-control-expose-headers') ?? '', /retry-after/i);
  assert.match(
    created.headers.get('access-control-expose-headers') ?? '',
    /taskwire-wait/i,
    'a page may read why a queued task waits',
  );

  const refused = await fetch(`${strict.url}/api/tasks`, { headers: { origin: 'https://docs.example.org' } });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get('access-control-allow-origin'), 'https://docs.example.org');
  assert.equal((await refused.json()).error.code, 'unauthorized');
});

test('another origin gets no CORS headers, and the request itself is still checked as usual', async () => {
  const res = await preflight(`${strict.url}/api/tasks`, 'https://evil.example.net');
  assert.equal(res.headers.get('access-control-allow-origin'), null);
  const token = await strict.token('alice');
  const get = await fetch(`${strict.url}/api/tasks`, {
    headers: { origin: 'https://evil.example.net', authorization: `Bearer ${token}` },
  });
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('access-control-allow-origin'), null);
});

test('with no allow-list any origin may call the API; requests without an Origin get no CORS headers', async () => {
  const res = await preflight(
    `${open.url}/api/tasks/00000000-0000-4000-8000-000000000000/cancel`,
    'http://localhost:5173',
  );
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), 'http://localhost:5173');
  const plain = await fetch(`${open.url}/healthz`);
  assert.equal(plain.headers.get('access-control-allow-origin'), null);
});

test('the LongPoll transport keeps its own CORS answers', async () => {
  const res = await preflight(`${strict.url}/socket/longpoll`, 'https://evil.example.net', 'GET');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
  assert.match(res.headers.get('access-control-allow-methods') ?? '', /get, post, options/);
});
