// The floor under "CPU per delivered event" for any Node server on this machine: a bare `net`
// server that writes one ready-made frame to each of N loopback sockets per step, nothing else
// (no WebSocket library, no JSON, no channels), read by a separate process as the fan-out
// generator reads. What it costs per write is what one delivery costs at the least when each
// delivery is its own socket's write, the shape of `fanout` with one channel per socket.
//   node bench/tools/write-floor.ts [--sockets 1000] [--rate 50000] [--seconds 10] [--bytes 140]
// Prints the writer's user and system CPU-µs per write, the reader's, and the machine's softirq.
import { fork } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { machineTicks, ticksPerSecond } from '../lib/procs.ts';

const { values } = parseArgs({
  options: {
    sockets: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '50000' },
    seconds: { type: 'string', default: '10' },
    bytes: { type: 'string', default: '140' },
    reader: { type: 'string' },
  },
});

if (values.reader) await read(Number(values.reader), Number(values.sockets));
else await write();

/** The reading side: N connections, every byte read and dropped; reports its CPU when told. */
async function read(port: number, sockets: number): Promise<void> {
  let bytes = 0;
  const conns: net.Socket[] = [];
  await Promise.all(
    Array.from(
      { length: sockets },
      () =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', resolve);
          s.setNoDelay(true);
          s.on('data', (d) => {
            bytes += d.length;
          });
          s.on('error', reject);
          conns.push(s);
        }),
    ),
  );
  let cpu = process.cpuUsage();
  process.on('message', (m: string) => {
    if (m === 'start') {
      cpu = process.cpuUsage();
      bytes = 0;
    } else if (m === 'stop') {
      process.send?.({ cpu: process.cpuUsage(cpu), bytes });
      for (const s of conns) s.destroy();
      process.disconnect();
    }
  });
  process.send?.('connected');
}

async function write(): Promise<void> {
  const sockets = Number(values.sockets);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  // A WebSocket text frame of a typical progress event: 2 header bytes, then JSON.
  const frame = Buffer.alloc(Number(values.bytes), 0x20);
  frame[0] = 0x81;
  frame[1] = frame.length - 2;
  const conns: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    conns.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const reader = fork(import.meta.filename, ['--reader', String(port), '--sockets', String(sockets)], {
    stdio: 'inherit',
  });
  await new Promise<void>((resolve, reject) => {
    reader.once('message', () => resolve());
    reader.once('exit', (code) => reject(new Error(`reader exited ${code}`)));
  });

  // One step every `stepMs`: one write to every socket (rate ÷ sockets steps a second).
  const stepMs = (1000 * sockets) / rate;
  reader.send('start');
  const m0 = machineTicks();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  let writes = 0;
  await new Promise<void>((resolve) => {
    let due = t0;
    const tick = () => {
      const now = performance.now();
      while (due <= now) {
        for (const s of conns) s.write(frame);
        writes += conns.length;
        due += stepMs;
      }
      if (now - t0 >= seconds * 1000) resolve();
      else setTimeout(tick, Math.max(0, due - performance.now()));
    };
    tick();
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const m1 = machineTicks();
  const got = await new Promise<{ cpu: NodeJS.CpuUsage; bytes: number }>((resolve) => {
    reader.once('message', (m) => resolve(m as { cpu: NodeJS.CpuUsage; bytes: number }));
    reader.send('stop');
  });
  for (const s of conns) s.destroy();
  server.close();

  const per = (us: number) => (us / writes).toFixed(2);
  const softirqUs = ((m1.softirq - m0.softirq) * 1_000_000) / ticksPerSecond();
  const row = {
    sockets,
    bytes: frame.length,
    writes_per_s: Math.round((writes / wallMs) * 1000),
    writer_user_us_per_write: per(cpu.user),
    writer_sys_us_per_write: per(cpu.system),
    writer_us_per_write: per(cpu.user + cpu.system),
    writer_elu: elu.toFixed(2),
    reader_us_per_write: per(got.cpu.user + got.cpu.system),
    softirq_us_per_write: per(softirqUs),
    bytes_read_ok: got.bytes >= (writes - sockets) * frame.length,
  };
  for (const [k, v] of Object.entries(row)) process.stdout.write(`${k.padEnd(26)} ${v}\n`);
  process.stdout.write(`${JSON.stringify(row)}\n`);
}
