// Hand-written HTTP over a raw TCP socket, for requests fetch refuses to send (unknown methods,
// bad framing, NUL in a header, huge request lines) and for reading exactly what comes back.
import net from 'node:net';

export interface RawAnswer {
  /** 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Everything received, as latin1 text. */
  raw: string;
}

/** Parses the first HTTP/1.1 response of `raw` (Content-Length framed, or up to the close). */
export function parseAnswer(raw: string): RawAnswer {
  const end = raw.indexOf('\r\n\r\n');
  if (!raw.startsWith('HTTP/1.') || end === -1) return { status: 0, headers: {}, body: '', raw };
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = headers['content-length'];
  const rest = Buffer.from(raw.slice(end + 4), 'latin1');
  const body = (length === undefined ? rest : rest.subarray(0, Number(length))).toString('utf8');
  return { status: Number(statusLine.split(' ')[1]), headers, body, raw };
}

/**
 * Writes `request` on a new connection and resolves with the first response, once it is complete
 * (by Content-Length) or the server closed; bounded by `timeoutMs`.
 */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 5000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let raw = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseAnswer(raw));
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`no complete answer within ${timeoutMs} ms; got ${JSON.stringify(raw.slice(0, 300))}`),
      );
    }, timeoutMs);
    socket.on('data', (d) => {
      raw += d.toString('latin1');
      const answer = parseAnswer(raw);
      const length = answer.headers['content-length'];
      if (answer.status && length !== undefined && Buffer.byteLength(answer.body) >= Number(length)) done();
    });
    socket.on('close', done);
    socket.on('error', () => {}); // a reset after the answer still resolves on 'close'
    socket.write(request);
  });
}
