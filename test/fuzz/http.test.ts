// Property: no request to the HTTP server gets a 5xx or an error body outside api.md's envelope
// ({"error": {"code", "message"}} with a code whose status is the response's), whatever it
// sends: random routes, bodies and headers through fetch; NUL and lone surrogates anywhere in a
// JSON body; percent garbage in paths; and, over raw sockets, unknown methods, huge request lines
// and headers, broken framing. Nothing half-written stays behind a refusal.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { ERROR_STATUS } from '../../src/http/errors.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { fcParams } from './settings.ts';

let t: TestServer;
let token: string;
before(async () => {
  t = await startTestServer({ maxCreatesPerMinute: 1_000_000, bodyLimitBytes: 4096 });
  token = await t.token('fuzzer');
});
after(async () => {
  console.log(
    `# fuzz http: ${tally.responses} responses (${tally.raw} over raw sockets), ` +
      `${tally.errors} errors, ${tally.fiveHundreds} × 5xx, ${tally.outside} outside the envelope`,
  );
  await t.stop();
});

const tally = { responses: 0, raw: 0, errors: 0, fiveHundreds: 0, outside: 0 };

/** api.md's envelope for any error response; counts what it sees. */
function checkResponse(what: string, status: number, body: string, method: string): void {
  tally.responses += 1;
  if (status >= 500) tally.fiveHundreds += 1;
  assert.ok(status > 0 && status < 500, `${what} → ${status} ${body.slice(0, 300)}`);
  if (status < 400) return;
  tally.errors += 1;
  if (method === 'HEAD') return; // a HEAD answer has no body
  let parsed: any;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const code = parsed?.error?.code;
  const ok =
    typeof code === 'string' &&
    typeof parsed.error.message === 'string' &&
    (ERROR_STATUS as Record<string, number>)[code] === status &&
    !/\bat .+\.(ts|js):\d+|"stack"|FST_ERR/.test(body);
  if (!ok) tally.outside += 1;
  assert.ok(ok, `${what} → ${status}: not api.md's error body: ${body.slice(0, 300)}`);
}

/** Strings with what PostgreSQL can't store: NUL, lone surrogates (high, low, reversed pairs). */
const hostileString = fc
  .tuple(
    fc.string({ maxLength: 20 }),
    fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff', '\ude00\ud83d', 'x\u0000\ud800'),
    fc.string({ maxLength: 20 }),
  )
  .map(([a, bad, b]) => a + bad + b);

/** JSON values with a hostile string somewhere: as a value or a key, at some depth. */
const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    fc.array(fc.oneof(fc.jsonValue(), tie('node')), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(fc.string({ maxLength: 8 }), hostileString),
      fc.oneof(fc.jsonValue(), tie('node')),
      {
        maxKeys: 4,
      },
    ),
  ),
})).node;

/** Percent-encoding that is broken, overlong, or decodes to NUL or a lone surrogate. */
const percentGarbage = fc.constantFrom(
  '%',
  '%z',
  '%zz',
  '%0',
  '%00',
  '%c0%af',
  '%ed%a0%80',
  '%ff%fe',
  '%%',
  '%u0000',
);

const paths = fc.oneof(
  fc.constantFrom(
    '/api/tasks',
    '/api/tasks/',
    '/healthz',
    '/readyz',
    '/metrics',
    '/docs/json',
    '/socket/websocket',
    '/socket/longpoll',
    '/api/tasks?limit=5',
    '/api/tasks?cursor=x',
    '/nope',
  ),
  fc.uuid().map((id) => `/api/tasks/${id}`),
  fc.uuid().map((id) => `/api/tasks/${id}/cancel`),
  fc.uuid().map((id) => `/api/tasks/${id}/events`),
  fc.string().map((s) => `/api/tasks/${encodeURIComponent(s)}`),
  fc
    .tuple(fc.constantFrom('status', 'type', 'limit', 'cursor', 'x'), fc.string())
    .map(([k, v]) => `/api/tasks?${k}=${encodeURIComponent(v)}`),
  fc
    .tuple(
      fc.constantFrom('/api/tasks/', '/', '/api/', '/api/tasks?type=', '/healthz/', '/docs/static/'),
      percentGarbage,
    )
    .map(([p, g]) => `${p}${g}`),
  fc.string({ minLength: 101, maxLength: 300 }).map((s) => `/api/tasks/${encodeURIComponent(s)}`),
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
  hostileJson.map((v) => JSON.stringify({ steps: 1, interval_ms: 0, input: v })),
  fc.tuple(hostileString, hostileJson).map(([k, v]) => JSON.stringify({ [k]: v })),
  fc.integer({ min: 500, max: 1500 }).map((d) => `{"deep":${'['.repeat(d)}${']'.repeat(d)}}`),
  fc.string({ minLength: 5000, maxLength: 6000 }),
);

test('random requests never get a 5xx, and every error has the contract shape', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
      paths,
      bodies,
      fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined),
      fc.constantFrom('good', 'none', 'garbage'),
      fc.option(fc.oneof(fc.string({ maxLength: 300 }), fc.constant('')), { nil: undefined }),
      async (method, path, body, contentType, auth, idempotencyKey) => {
        const headers: Record<string, string> = {};
        if (contentType && body !== undefined) headers['content-type'] = contentType;
        if (auth === 'good') headers.authorization = `Bearer ${token}`;
        if (auth === 'garbage') headers.authorization = 'Bearer x.y.z';
        // fetch refuses control characters in headers (the raw-socket property sends those).
        if (idempotencyKey !== undefined && [...idempotencyKey].every((c) => c >= ' ' && c <= '~')) {
          headers['idempotency-key'] = idempotencyKey;
        }
        const hasBody = body !== undefined && method !== 'GET' && method !== 'HEAD';
        const res = await fetch(`${t.url}${path}`, {
          method,
          headers,
          body: hasBody ? body : undefined,
          signal: AbortSignal.timeout(10_000),
        });
        checkResponse(`${method} ${path}`, res.status, await res.text(), method);
      },
    ),
    fcParams,
  );
  const res = await t.api(token, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 });
  assert.equal(res.status, 201, 'the server still serves');
});

/** A method token: known ones, and any Node's parser does not know. */
const methods = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'CONNECT', 'PURGE'),
  fc.stringMatching(/^[A-Z]{1,12}$/),
  fc.constantFrom('get', 'G ET', 'GET\u0000', '', 'ÄÖ'),
);
const requestTargets = fc.oneof(
  paths,
  fc.integer({ min: 8_000, max: 40_000 }).map((n) => `/api/tasks?x=${'a'.repeat(n)}`),
  fc.constantFrom('*', 'http://other.example/api/tasks', '', '//', '/\u0000', '/ /'),
);
/** Header blocks: ordinary, huge, many, with NUL, broken framing. */
const headerBlocks = fc.oneof(
  fc.constant(''),
  fc.constant(`Authorization: Bearer TOKEN\r\n`),
  fc.integer({ min: 8_000, max: 40_000 }).map((n) => `X-Big: ${'b'.repeat(n)}\r\n`),
  fc
    .integer({ min: 100, max: 3000 })
    .map((n) => Array.from({ length: n }, (_, i) => `X-H${i}: v\r\n`).join('')),
  hostileString.map((s) => `Idempotency-Key: ${s}\r\n`),
  fc.constantFrom(
    'Content-Length: abc\r\n',
    'Content-Length: -1\r\n',
    'Content-Length: 1\r\nContent-Length: 2\r\n',
    'Transfer-Encoding: chunked\r\nContent-Length: 0\r\n',
    'Transfer-Encoding: gzip\r\n',
    'Expect: tea\r\n',
    'Connection: Upgrade\r\nUpgrade: websocket\r\n',
    'Host: \u0000\r\n',
    'Bad Header\r\n',
    ': empty-name\r\n',
    'X-Fold: a\r\n  folded\r\n',
  ),
);

test('raw requests (any method, request line, headers) never get a 5xx or a body outside the envelope', async () => {
  await fc.assert(
    fc.asyncProperty(
      methods,
      requestTargets,
      headerBlocks,
      fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 x', ''),
      async (method, target, headers, version) => {
        const request =
          `${method} ${target} ${version}\r\nHost: fuzz\r\n${headers.replace('TOKEN', token)}` +
          'Connection: close\r\n\r\n';
        const answer = await rawRequest(t.server.port, Buffer.from(request, 'latin1'), 10_000);
        tally.raw += 1;
        const shown = `${JSON.stringify(request.slice(0, 80))} (${request.length} bytes)`;
        // Whatever the bytes, the server answers before it closes.
        if (answer.status === 0) {
          assert.fail(`${shown} → closed without an answer: ${JSON.stringify(answer.raw.slice(0, 200))}`);
        }
        if (answer.status === 101) return;
        checkResponse(shown, answer.status, answer.body, method);
      },
    ),
    { ...fcParams, numRuns: Math.max(20, Math.floor(fcParams.numRuns / 2)) },
  );
  const res = await t.api(token, 'POST', '/api/tasks', { steps: 1, interval_ms: 0 });
  assert.equal(res.status, 201, 'the server still serves');
});
