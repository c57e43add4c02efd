// Child processes of a run (servers under test and load generators): started through bash so
// that `ulimit -n` can be raised first, with an IPC channel, logs to a file; plus what /proc says
// about them (RSS, CPU) and small waits.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

let hardNofile: number | undefined;

/** The hard RLIMIT_NOFILE of this machine's processes (a child cannot go past it). */
export function nofileHardLimit(): number {
  if (hardNofile === undefined) {
    const raw = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
    hardNofile = raw === 'unlimited' ? 1_048_576 : Number(raw);
  }
  return hardNofile;
}

let clockTicks: number | undefined;
/** The kernel's clock ticks per second (CLK_TCK): the unit of /proc's CPU times. */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface SpawnOptions {
  env: Record<string, string | undefined>;
  /** Flags for node itself (before the script). */
  nodeArgs?: string[];
  /** Wanted open-files limit; raised as far as the hard limit allows. */
  nofile?: number;
  logFile: string;
  cwd?: string;
  /** Scheduling niceness (0..19): a load generator may yield the CPU to the server under test. */
  nice?: number;
}

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** Sends a request over IPC and resolves with the reply carrying the same id. */
  request<T>(msg: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Messages that are not replies (progress notes). */
  onNote(fn: (note: Record<string, unknown>) => void): void;
  /** The first line of its output that matches (one already printed counts). */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
  tail(lines?: number): string;
}

export function spawnNode(script: string, args: string[], opts: SpawnOptions): Child {
  const want = opts.nofile ?? 65_536;
  // `ulimit -n` may fail past the hard limit: then take the hard limit.
  const nice = opts.nice ? `renice -n ${opts.nice} -p $$ >/dev/null; ` : '';
  const wrapper = `ulimit -n ${want} 2>/dev/null || ulimit -n $(ulimit -Hn); ${nice}exec "$0" "$@"`;
  const proc = spawn('bash', ['-c', wrapper, process.execPath, ...(opts.nodeArgs ?? []), script, ...args], {
    cwd: opts.cwd,
    env: opts.env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const recent: string[] = [];
  const lineWaiters: Array<{ pattern: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  const keep = (chunk: Buffer) => {
    log.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      recent.push(line);
      for (let i = lineWaiters.length - 1; i >= 0; i--) {
        const m = lineWaiters[i].pattern.exec(line);
        if (m) lineWaiters.splice(i, 1)[0].resolve(m);
      }
    }
    if (recent.length > 200) recent.splice(0, recent.length - 200);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => {
      log.end();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  let nextId = 1;
  const waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  const noteFns: Array<(n: Record<string, unknown>) => void> = [];
  proc.on('message', (raw) => {
    const msg = raw as Record<string, unknown>;
    const id = msg.replyTo as number | undefined;
    if (id !== undefined && waiting.has(id)) {
      const w = waiting.get(id)!;
      waiting.delete(id);
      if (msg.error) w.reject(new Error(String(msg.error)));
      else w.resolve(msg.result);
      return;
    }
    for (const fn of noteFns) fn(msg);
  });
  void exited.then((code) => {
    for (const w of waiting.values()) w.reject(new Error(`process ${proc.pid} exited (${code})`));
    waiting.clear();
  });
  const child: Child = {
    proc,
    pid: proc.pid!,
    logFile: opts.logFile,
    exited,
    request<T>(msg: Record<string, unknown>, timeoutMs = 600_000): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`no answer from process ${proc.pid} to ${String(msg.cmd)} in ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        if (!proc.connected) {
          waiting.delete(id);
          clearTimeout(timer);
          reject(new Error(`process ${proc.pid} has no IPC channel (exited?)`));
          return;
        }
        proc.send({ ...msg, id });
      });
    },
    onNote(fn) {
      noteFns.push(fn);
    },
    line(pattern, timeoutMs = 60_000) {
      const seen = recent.map((l) => pattern.exec(l)).find((m) => m);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${pattern} in ${timeoutMs} ms`)), timeoutMs);
        const waiter = {
          pattern,
          resolve: (m: RegExpExecArray) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        lineWaiters.push(waiter);
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`process ${proc.pid} exited (${code}) before printing ${pattern}`));
        });
      });
    },
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    tail(lines = 20) {
      return recent.slice(-lines).join('\n');
    },
  };
  return child;
}

/** Resident set size of a process, in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** The parts of its resident set: anonymous (RssAnon) and file-backed (RssFile) pages, in bytes. */
export function rssParts(pid: number): { rssAnon: number; rssFile: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  };
  return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
}

/** CPU time a process has used so far, in ms: user and system (kernel, i.e. syscalls). */
export function cpuSplitMs(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    const tick = 1000 / ticksPerSecond();
    return { user: Number(fields[11]) * tick, sys: Number(fields[12]) * tick };
  } catch {
    return { user: 0, sys: 0 };
  }
}

/** The pids of a process's descendants (children, their children...), from /proc/<pid>/stat. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** CPU split of a process and every descendant (a `--processes N` server: primary + workers), in ms. */
export function treeCpuSplitMs(pids: number[]): { user: number; sys: number } {
  let user = 0;
  let sys = 0;
  for (const pid of pids) {
    const c = cpuSplitMs(pid);
    user += c.user;
    sys += c.sys;
  }
  return { user, sys };
}

/** Resident set size of a process and its descendants, in bytes. */
export function treeRssBytes(pid: number): number {
  let total = rssBytes(pid);
  for (const c of descendants(pid)) {
    try {
      total += rssBytes(c);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** CPU time (user + system) a process has used so far, in ms. */
export function cpuMs(pid: number): number {
  const { user, sys } = cpuSplitMs(pid);
  return user + sys;
}

/** CPU time (ms) used so far by each live process whose name is `comm` (e.g. postgres), by pid. */
export function cpuByPid(comm: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (name === comm) out.set(Number(entry), cpuMs(Number(entry)));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Busy and total jiffies of the whole machine (/proc/stat), for "what else was running". */
export function machineTicks(): { busy: number; total: number; softirq: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  // user nice system idle iowait irq softirq steal
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + (v[4] ?? 0);
  return { busy: total - idle, total, softirq: (v[5] ?? 0) + (v[6] ?? 0) };
}

/** Percent of the whole machine busy over `ms` (100 = every core busy). */
export async function machineBusyPct(ms = 1000): Promise<number> {
  const a = machineTicks();
  await sleep(ms);
  const b = machineTicks();
  return ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100;
}

/**
 * Samples CPU of a pid (and of named helper processes, e.g. postgres backends; processes that
 * exit inside the window lose their share) between start() and stop(), and of the whole machine.
 */
export class CpuMeter {
  readonly #pid: number;
  /** The pid and its descendants at start() (a `--processes N` server's workers count too). */
  #pids: number[] = [];
  #perPid0 = new Map<number, number>();
  readonly #comms: string[];
  #t0 = 0;
  #c0 = { user: 0, sys: 0 };
  #h0: Array<Map<number, number>> = [];
  #m0 = { busy: 0, total: 0, softirq: 0 };

  constructor(pid: number, comms: string[] = []) {
    this.#pid = pid;
    this.#comms = comms;
  }

  start(): void {
    this.#t0 = performance.now();
    this.#pids = [this.#pid, ...descendants(this.#pid)];
    this.#c0 = treeCpuSplitMs(this.#pids);
    this.#perPid0 = new Map(this.#pids.map((pid) => [pid, cpuMs(pid)]));
    this.#h0 = this.#comms.map(cpuByPid);
    this.#m0 = machineTicks();
  }

  /** CPU used as a percentage of one core over the window, for the pid and each helper. */
  stop(): {
    wallMs: number;
    cpuPct: number;
    sysPct: number;
    helpers: Record<string, number>;
    /** Whole machine busy, in % of one core (so 200 = both cores of a 2-core machine). */
    machinePct: number;
    /** Of which interrupt handling (mostly loopback TCP processed in softirq), % of one core. */
    irqPct: number;
    /** cpuPct per process of the tree (the pid first, then its descendants), % of one core. */
    perProcessPct: number[];
  } {
    const wallMs = performance.now() - this.#t0;
    const c1 = treeCpuSplitMs(this.#pids);
    const m1 = machineTicks();
    const sysPct = ((c1.sys - this.#c0.sys) / wallMs) * 100;
    const cpuPct = ((c1.user + c1.sys - this.#c0.user - this.#c0.sys) / wallMs) * 100;
    const helpers: Record<string, number> = {};
    this.#comms.forEach((c, i) => {
      let used = 0;
      for (const [pid, ms] of cpuByPid(c)) used += ms - (this.#h0[i].get(pid) ?? 0);
      helpers[c] = (used / wallMs) * 100;
    });
    const cores = cpus().length;
    const span = Math.max(1, m1.total - this.#m0.total);
    const machinePct = ((m1.busy - this.#m0.busy) / span) * 100 * cores;
    const irqPct = ((m1.softirq - this.#m0.softirq) / span) * 100 * cores;
    const perProcessPct = this.#pids.map(
      (pid) => ((cpuMs(pid) - (this.#perPid0.get(pid) ?? 0)) / wallMs) * 100,
    );
    return { wallMs, cpuPct, sysPct, helpers, machinePct, irqPct, perProcessPct };
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${lastErr}` : ''}`);
    await sleep(everyMs);
  }
}
