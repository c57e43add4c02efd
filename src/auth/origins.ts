// Which browser origins may talk to this server: the WebSocket/LongPoll origin check and the
// HTTP API's CORS answers read the same allow-list (TASKWIRE_ALLOWED_ORIGINS).

interface OriginRule {
  scheme: string | undefined;
  host: string;
  wildcard: boolean;
  port: string | undefined;
}

/**
 * Phoenix's check_origin list: `https://example.com`, `//other.com:888`, `//*.example.com`.
 * Scheme and port are compared only when the entry names them; `*.` matches the host and its
 * subdomains. An empty list allows every origin (development). No Origin header always passes,
 * and neither does a page of the server's own (the dashboard): an Origin whose host:port is the
 * request's Host.
 */
export class OriginPolicy {
  readonly #rules: OriginRule[];
  readonly #any: boolean;

  constructor(allowed: string[]) {
    this.#any = allowed.length === 0 || allowed.includes('*');
    this.#rules = allowed.flatMap((entry) => {
      const m = /^(?:([a-z][a-z0-9+.-]*):)?\/\/(\*\.)?([^/:]+)(?::(\d+))?\/?$/i.exec(entry.trim());
      if (!m) return [];
      return [
        { scheme: m[1]?.toLowerCase(), wildcard: m[2] !== undefined, host: m[3].toLowerCase(), port: m[4] },
      ];
    });
  }

  allows(origin: string | string[] | undefined, requestHost?: string | string[]): boolean {
    if (origin === undefined) return true;
    if (this.#any) return true;
    if (Array.isArray(origin)) return false;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    if (typeof requestHost === 'string' && requestHost !== '' && url.host === requestHost.toLowerCase())
      return true;
    const scheme = url.protocol.slice(0, -1);
    const host = url.hostname.toLowerCase();
    const port = url.port || (scheme === 'https' || scheme === 'wss' ? '443' : '80');
    return this.#rules.some(
      (r) =>
        (r.scheme === undefined || r.scheme === scheme) &&
        (r.port === undefined || r.port === port) &&
        (host === r.host || (r.wildcard && host.endsWith(`.${r.host}`))),
    );
  }
}
