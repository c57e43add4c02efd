// The floor under "CPU per delivered event" for any Node server on this machine: a bare `net`
// server that writes one ready-made frame to each of N loopback sockets per step, nothing else
// (no WebSocket library, no JSON, no channels), read by separate processes as the fan-out
// generators read. What it costs per write is what one delivery costs at the least when each
// delivery is its own socket's write, the shape of `fanout` with one channel per socket.
// Used by bench/tools/write-floor.ts and by `fanout --floor`; run as a script it is a reader.
import { fork } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { machineTicks, ticksPerSecond } from './procs.ts';
import { concat, Samples, summarize } from './stats.ts';

export interface WriteFloorOptions {
  sockets: number;
  /** Writes per second, in steps of one write to every socket (rate ÷ sockets steps a second). */
  rate: number;
  seconds: number;
  /** Frame size: a WebSocket text frame of a typical progress event is ~140 bytes. */
  bytes: number;
  /** Reader processes sharing the sockets (fanout reads with two generators). */
  readers: number;
  /**
   * Each step writes the sockets in this many groups, each stamped with the time just before its
   * writes (a fan-out step of T tasks: each task's event goes to its subscribers in turn).
   */
  groups?: number;
}

export interface WriteFloor {
  sockets: number;
  bytes: number;
  readers: number;
  writes_per_s: number;
  writer_user_us_per_write: number;
  writer_sys_us_per_write: number;
  writer_us_per_write: number;
  writer_elu: number;
  reader_us_per_write: number;
  softirq_us_per_write: number;
  bytes_read_ok: boolean;
  /** Stamp → read, as the readers saw it: the latency a server with no work of its own would show. */
  latency_p50_ms: number;
  latency_p99_ms: number;
  latency_max_ms: number;
}

interface ReaderReport {
  cpu: NodeJS.CpuUsage;
  bytes: number;
  /** Each frame's stamp → read, ms. */
  latency: Float64Array;
}

/** Where a frame carries its stamp (Date.now(), 13 digits). */
const STAMP_AT = 2;
const STAMP_DIGITS = 13;

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Runs the bare writer against `readers` reader processes and reports its CPU per write. */
export async function measureWriteFloor(o: WriteFloorOptions): Promise<WriteFloor> {
  // The size of a WebSocket text frame: 2 header bytes, then the payload: the time it was stamped
  // (13 digits), then spaces. The readers take the stamp from every frame.
  const size = Math.max(STAMP_AT + STAMP_DIGITS, o.bytes);
  const template = Buffer.alloc(size, 0x20);
  template[0] = 0x81;
  template[1] = Math.min(125, size - 2);
  const groups = Math.max(1, Math.min(o.groups ?? 1, o.sockets));
  const conns: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    conns.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const per = Array.from(
    { length: o.readers },
    (_, i) => Math.floor(o.sockets / o.readers) + (i < o.sockets % o.readers ? 1 : 0),
  );
  const readers = per.map((n) =>
    fork(import.meta.filename, ['--reader', String(port), '--sockets', String(n), '--bytes', String(size)], {
      stdio: 'inherit',
      serialization: 'advanced', // the latency samples travel as a Float64Array
    }),
  );
  try {
    await Promise.all(
      readers.map(
        (r) =>
          new Promise<void>((resolve, reject) => {
            r.once('message', () => resolve());
            r.once('exit', (code) => reject(new Error(`write-floor reader exited ${code}`)));
          }),
      ),
    );
    const connectedBy = Date.now() + 30_000;
    while (conns.length < o.sockets) {
      if (Date.now() > connectedBy)
        throw new Error(`write-floor: ${conns.length} of ${o.sockets} sockets connected`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }

    const stepMs = (1000 * o.sockets) / o.rate;
    for (const r of readers) r.send('start');
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
          for (let g = 0; g < groups; g++) {
            // A buffer of its own: a write the kernel could not take at once keeps it until later.
            const frame = Buffer.from(template);
            frame.write(String(Date.now()), STAMP_AT, 'latin1');
            for (let i = g; i < conns.length; i += groups) conns[i].write(frame);
          }
          writes += conns.length;
          due += stepMs;
        }
        if (now - t0 >= o.seconds * 1000) resolve();
        else setTimeout(tick, Math.max(0, due - performance.now()));
      };
      tick();
    });
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const m1 = machineTicks();
    const got = await Promise.all(
      readers.map(
        (r) =>
          new Promise<ReaderReport>((resolve) => {
            r.once('message', (m) => resolve(m as ReaderReport));
            r.send('stop');
          }),
      ),
    );
    const readerUs = got.reduce((a, g) => a + g.cpu.user + g.cpu.system, 0);
    const latency = summarize(concat(got.map((g) => g.latency)));
    const bytesRead = got.reduce((a, g) => a + g.bytes, 0);
    const softirqUs = ((m1.softirq - m0.softirq) * 1_000_000) / ticksPerSecond();
    return {
      sockets: o.sockets,
      bytes: size,
      readers: o.readers,
      writes_per_s: Math.round((writes / wallMs) * 1000),
      writer_user_us_per_write: round2(cpu.user / writes),
      writer_sys_us_per_write: round2(cpu.system / writes),
      writer_us_per_write: round2((cpu.user + cpu.system) / writes),
      writer_elu: round2(elu),
      reader_us_per_write: round2(readerUs / writes),
      softirq_us_per_write: round2(softirqUs / writes),
      bytes_read_ok: bytesRead >= (writes - o.sockets) * size,
      latency_p50_ms: latency.p50,
      latency_p99_ms: latency.p99,
      latency_max_ms: latency.max,
    };
  } finally {
    for (const s of conns) s.destroy();
    server.close();
    for (const r of readers) if (r.exitCode === null) r.kill();
  }
}

/**
 * The reading side: its share of the connections, every frame's stamp read and its latency
 * counted; reports its CPU and the latencies when told.
 */
async function read(port: number, sockets: number, frameBytes: number): Promise<void> {
  let bytes = 0;
  let latency = new Samples();
  const conns: net.Socket[] = [];
  await Promise.all(
    Array.from(
      { length: sockets },
      () =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', resolve);
          s.setNoDelay(true);
          // A frame split across reads: its start is kept until the rest comes.
          let partial: Buffer | null = null;
          s.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            const now = Date.now();
            const d = partial ? Buffer.concat([partial, chunk]) : chunk;
            partial = null;
            let at = 0;
            for (; at + frameBytes <= d.length; at += frameBytes) {
              const stamp = Number(d.toString('latin1', at + STAMP_AT, at + STAMP_AT + STAMP_DIGITS));
              latency.push(now - stamp);
            }
            if (at < d.length) partial = Buffer.from(d.subarray(at));
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
      latency = new Samples();
    } else if (m === 'stop') {
      for (const s of conns) s.destroy();
      // Disconnect once the report has left: a large one is still being written when send returns.
      process.send?.(
        { cpu: process.cpuUsage(cpu), bytes, latency: latency.view() } satisfies ReaderReport,
        () => process.disconnect(),
      );
    }
  });
  process.send?.('connected');
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { reader: { type: 'string' }, sockets: { type: 'string' }, bytes: { type: 'string' } },
  });
  if (values.reader) await read(Number(values.reader), Number(values.sockets), Number(values.bytes));
}
