// A TCP proxy in front of a test server or PostgreSQL, to fail connections the way a network does:
// drop every open connection (both sides see it die), refuse new ones for a while (accepted and
// destroyed at once), or both at once (an outage), without touching what is behind it.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Destroys every open connection. */
  drop(): void;
  /** While down, new connections are accepted and destroyed at once. */
  setDown(down: boolean): void;
  /** An outage: down, and every open connection dropped. */
  cut(): void;
  /** The end of an outage: new connections pass again. */
  restore(): void;
  readonly open: number;
  /** Connections refused (destroyed at once) while down, so far. */
  readonly refused: number;
  close(): Promise<void>;
}

/** A proxy to the host and port of `target` (any URL: http://..., postgres://...). */
export function startProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  return startTcpProxy(hostname, Number(port));
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let down = false;
  let refused = 0;
  const server = net.createServer((client) => {
    if (down) {
      refused += 1;
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const drop = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    drop,
    setDown(value) {
      down = value;
    },
    cut() {
      down = true;
      drop();
    },
    restore() {
      down = false;
    },
    get open() {
      return pairs.size;
    },
    get refused() {
      return refused;
    },
    close() {
      drop();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
