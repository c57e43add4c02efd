// Ports for servers that cannot bind port 0 and say what they got (PostgreSQL: its port also
// names its socket file, and a restart must find it again). A quiet port is a random one below the
// kernel's ephemeral range: no port-0 bind and no outgoing connection is ever given such a port,
// so while the tests run (every server of ours binds port 0) only a deliberate bind can take it.
// That is what makes stopping PostgreSQL and starting it again on the same port safe.
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** The first port of the ephemeral range (Linux: ip_local_port_range; elsewhere IANA's 49152). */
function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 49_152;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A random port in 20000..(ephemeral start - 1) that nothing listens on now (a fixed service, such
 * as RabbitMQ's 25672, may sit in that range; another test could pick the same number only by a
 * 1-in-10,000 chance).
 */
export async function quietPort(): Promise<number> {
  const top = Math.max(20_001, ephemeralStart());
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * (top - 20_000));
    if (!(await listening(port))) return port;
  }
  throw new Error('no quiet port found in 50 tries');
}
