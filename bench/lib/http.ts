// A small keep-alive HTTP JSON client on node:http (cheaper per request than fetch), used by the
// generator to submit tasks and by the runner for a few control calls.
import http from 'node:http';

export interface JsonResponse {
  status: number;
  body: any;
}

export class HttpClient {
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #headers: Record<string, string>;

  constructor(baseUrl: string, opts: { token?: string; maxSockets?: number } = {}) {
    this.#base = new URL(baseUrl);
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64 });
    this.#headers = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  }

  request(method: string, path: string, body?: unknown, token?: string): Promise<JsonResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { ...this.#headers };
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.#base.hostname,
          port: this.#base.port,
          method,
          path,
          headers,
          agent: this.#agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if (text && (res.headers['content-type'] ?? '').includes('json')) {
              try {
                parsed = JSON.parse(text);
              } catch {
                // keep the text
              }
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
