// Tells a database that is unreachable or restarting (retry later, answer 503) from a bad statement.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (UNAVAILABLE_CODES.has(code)) return true;
    // 08: connection exception; 57P: operator intervention (shutdown); 53: insufficient resources.
    if (/^(08|57P|53)/.test(code)) return true;
    // 55000 with this text: the database refuses new connections for now (ALLOW_CONNECTIONS false).
    if (code === '55000' && /is not currently accepting connections/.test(err.message)) return true;
  }
  return /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connect ECONNREFUSED|Client has encountered a connection error|the database system is (starting up|shutting down)|Client was closed/i.test(
    err.message,
  );
}
