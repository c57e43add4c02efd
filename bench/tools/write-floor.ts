// The floor under "CPU per delivered event" for any Node server on this machine (see
// bench/lib/write-floor.ts): a bare `net` writer's CPU per loopback write to N sockets.
//   node bench/tools/write-floor.ts [--sockets 1000] [--rate 50000] [--seconds 10] [--bytes 140] [--readers 1] [--groups 1]
// Prints the writer's user and system CPU-µs per write, the readers', the machine's softirq, and
// the stamp → read latency the readers saw (--groups G: each step writes the sockets in G groups,
// each stamped just before its writes, as a fan-out step of G tasks).
// `npm run bench -- fanout --floor` measures the same after a fan-out run, in its shape.
import { parseArgs } from 'node:util';
import { measureWriteFloor } from '../lib/write-floor.ts';

const { values } = parseArgs({
  options: {
    sockets: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '50000' },
    seconds: { type: 'string', default: '10' },
    bytes: { type: 'string', default: '140' },
    readers: { type: 'string', default: '1' },
    groups: { type: 'string', default: '1' },
  },
});

const row = await measureWriteFloor({
  groups: Number(values.groups),
  sockets: Number(values.sockets),
  rate: Number(values.rate),
  seconds: Number(values.seconds),
  bytes: Number(values.bytes),
  readers: Number(values.readers),
});
for (const [k, v] of Object.entries(row)) process.stdout.write(`${k.padEnd(26)} ${v}\n`);
process.stdout.write(`${JSON.stringify(row)}\n`);
