// A TCP proxy in front of a test server, to cut a client's connections the way a network does
// (both HTTP and the socket go through it), and to refuse new ones for a while.
import net from 'node:net';

export interface TcpProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Destroys every open connection (both sides see the TCP connection die). */
  drop(): void;
  /** While down, new connections are accepted and destroyed at once. */
  setDown(down: boolean): void;
  readonly open: number;
  /** Connections refused (destroyed at once) while down, so far. */
  readonly refused: number;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const pairs = new Set<[net.Socket, net.Socket]>();
  let down = false;
  let refused = 0;
  const server = net.createServer((client) => {
    if (down) {
      refused += 1;
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(port), hostname);
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
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    drop() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    setDown(value) {
      down = value;
    },
    get open() {
      return pairs.size;
    },
    get refused() {
      return refused;
    },
    close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
