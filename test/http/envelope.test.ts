// api.md's error body for every error response, whatever the request: unknown routes (404), known
// paths with another method (405 with Allow), and what Node's parser or Fastify's router refuse
// before any route runs (unknown methods, bad framing, bad percent-encoding, oversized headers,
// a timeout), sent over raw sockets where fetch would refuse to send them. Never a 5xx.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RawAnswer, rawRequest } from '../helpers/raw-http.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
let alice: string;
let port: number;
/** Below the body limit, so LongPoll's own frame check answers. */
const FRAME_LIMIT = 4096;

before(async () => {
  t = await startTestServer({ longPollWindowMs: 500, maxFrameBytes: FRAME_LIMIT });
  alice = await t.token('alice');
  port = t.server.port;
});
after(() => t?.stop());

/** api.md's error body with this status and code; returns it. */
function assertEnvelope(res: { status: number; body: string }, status: number, code: string) {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.body}`);
  const parsed = JSON.parse(res.body);
  // Only `error`; LongPoll answers also keep the `status` phoenix.js reads.
  assert.ok(
    Object.keys(parsed).every((k) => k === 'error' || k === 'status'),
    res.body,
  );
  assert.equal(parsed.error.code, code, res.body);
  assert.equal(typeof parsed.error.message, 'string');
  assert.doesNotMatch(res.body, /\bat .+\.(ts|js):\d+|FST_ERR|statusCode/, 'nothing of Fastify leaks');
  return parsed.error;
}

async function send(method: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${t.url}${path}`, { method, ...init });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

const raw = (request: string): Promise<RawAnswer> => rawRequest(port, request);

describe('routes no one serves', () => {
  test('an unknown path is 404 not_found', async () => {
    assertEnvelope(await send('GET', '/nope'), 404, 'not_found');
    assertEnvelope(await send('POST', '/api/nope'), 404, 'not_found');
  });

  for (const [method, path, allow] of [
    ['DELETE', '/api/tasks', 'GET, HEAD, POST, OPTIONS'],
    ['PUT', '/healthz', 'GET, HEAD, OPTIONS'],
    ['PATCH', '/api/tasks/0190a0a0-0000-7000-8000-000000000000', 'GET, HEAD, OPTIONS'],
    ['GET', '/api/tasks/0190a0a0-0000-7000-8000-000000000000/cancel', 'POST, OPTIONS'],
    ['PUT', '/socket/longpoll', 'GET, HEAD, POST, OPTIONS'],
  ] as const) {
    test(`${method} ${path} is 405 method_not_allowed with Allow: ${allow}`, async () => {
      const res = await send(method, path);
      assertEnvelope(res, 405, 'method_not_allowed');
      assert.equal(res.headers.get('allow'), allow);
    });
  }

  test('HEAD on a POST-only path is 405 with Allow (and no body, as HEAD answers go)', async () => {
    const res = await send('HEAD', '/api/tasks/0190a0a0-0000-7000-8000-000000000000/cancel');
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST, OPTIONS');
  });

  test('a missing file under a served prefix (/docs/static/) is 404, not 405', async () => {
    assertEnvelope(await send('GET', '/docs/static/no-such-file.js'), 404, 'not_found');
  });

  test('bad percent-encoding in the path is 400 bad_request', async () => {
    assertEnvelope(await send('GET', '/api/tasks/%zz'), 400, 'bad_request');
    assertEnvelope(await send('GET', '/%c0%af'), 400, 'bad_request');
  });

  test('a path parameter longer than any id is 404 not_found', async () => {
    const res = await send('GET', `/api/tasks/${'a'.repeat(200)}`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    assertEnvelope(res, 404, 'not_found');
  });
});

describe('requests the HTTP parser refuses (raw sockets)', () => {
  test('an unknown method on a served path is 405 with Allow; elsewhere 404', async () => {
    const known = await raw('FOO /api/tasks HTTP/1.1\r\nHost: x\r\n\r\n');
    assertEnvelope(known, 405, 'method_not_allowed');
    assert.equal(known.headers.allow, 'GET, HEAD, POST, OPTIONS');
    assertEnvelope(await raw('BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n'), 404, 'not_found');
  });

  test('bytes that are not HTTP are 400 bad_request', async () => {
    assertEnvelope(await raw('garbage\r\n\r\n'), 400, 'bad_request');
    assertEnvelope(await raw('\u0000\u0001\u0002 / HTTP/1.1\r\n\r\n'), 400, 'bad_request');
  });

  test('a bad Content-Length, or Content-Length with chunked, is 400 bad_request', async () => {
    assertEnvelope(
      await raw('POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'),
      400,
      'bad_request',
    );
    assertEnvelope(
      await raw(
        'POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc',
      ),
      400,
      'bad_request',
    );
  });

  test('a bad chunked body is 400 bad_request', async () => {
    const res = await raw(
      `POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
    );
    assertEnvelope(res, 400, 'bad_request');
  });

  test('NUL in a header value (e.g. Idempotency-Key) is 400 bad_request', async () => {
    const res = await raw(
      `POST /api/tasks HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\u0000b\r\nContent-Length: 2\r\n\r\n{}`,
    );
    assertEnvelope(res, 400, 'bad_request');
  });

  test('a request line or a header over the size limit is 431 header_too_large', async () => {
    assertEnvelope(
      await raw(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      431,
      'header_too_large',
    );
    assertEnvelope(
      await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`),
      431,
      'header_too_large',
    );
    let many = '';
    for (let i = 0; i < 2000; i++) many += `X-H${i}: v\r\n`;
    assertEnvelope(await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n`), 431, 'header_too_large');
  });

  test('CONNECT is 405 method_not_allowed (no proxy here)', async () => {
    assertEnvelope(
      await raw('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n'),
      405,
      'method_not_allowed',
    );
  });

  test('a request that times out is 408 request_timeout', async () => {
    // Node raises this after headersTimeout (60 s); the same 'clientError' is raised here at once.
    const socket = new Promise<Socket>((resolve) => t.server.app.server.once('connection', resolve));
    const answer = rawRequest(port, 'GET /healthz HTTP/1.1\r\n');
    const err = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    t.server.app.server.emit('clientError', err, await socket);
    assertEnvelope(await answer, 408, 'request_timeout');
  });

  test('an Expect other than 100-continue is ignored, not a bare 417', async () => {
    const res = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: tea\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 200, res.raw);
  });

  test('an Upgrade header on an API route is ignored: the route answers', async () => {
    const res = await raw(
      `GET /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
    );
    assert.equal(res.status, 200, res.raw);
  });
});

describe('the socket endpoints', () => {
  test('a refused WebSocket upgrade is 403 with the error body', async () => {
    const res = await raw(
      'GET /socket/websocket?vsn=2.0.0&token=nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assertEnvelope(res, 403, 'forbidden');
  });

  test('a plain GET on /socket/websocket is 400 with the error body', async () => {
    assertEnvelope(await send('GET', '/socket/websocket'), 400, 'bad_request');
  });

  test('LongPoll HTTP errors keep the status phoenix.js reads and carry the error body', async () => {
    const created = await send('GET', `/socket/longpoll?vsn=2.0.0&token=${alice}`);
    const session = encodeURIComponent(JSON.parse(created.body).token);
    const post = (body: string) =>
      send('POST', `/socket/longpoll?vsn=2.0.0&token=${session}`, {
        body,
        headers: { 'content-type': 'application/x-ndjson' },
      });
    const big = await post(`["1","1","phoenix","heartbeat",{"pad":"${'x'.repeat(FRAME_LIMIT)}"}]`);
    assertEnvelope(big, 413, 'payload_too_large');
    assert.equal(JSON.parse(big.body).status, 413);
    const malformed = await post('not a message');
    assertEnvelope(malformed, 400, 'bad_request');
    assert.equal(JSON.parse(malformed.body).status, 400);
  });
});
