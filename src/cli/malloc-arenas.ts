// `taskwire start` on Linux runs with glibc's malloc held to two arenas. By default glibc gives
// each thread that allocates its own arena (up to 8 per core): V8's compiler and GC threads and
// libuv's pool each keep the memory they once used, which after a burst of 1,000 joins was ~8 MB
// of a ~105 MB server, and it costs no measurable speed here (bench/README.md, issue 14). The
// limit can only be set before a process starts, so the process replaces itself (same pid, same
// arguments and flags, `process.execve`) with MALLOC_ARENA_MAX=2 set. A MALLOC_ARENA_MAX already in
// the environment is kept as it is (`0`: glibc's own default). A process with an IPC channel (a
// cluster worker, or one whose parent talks to it over IPC, as the benchmark does) is not
// replaced: the channel would not survive; its parent sets the variable (cluster workers inherit
// the primary's). Imported first by main.ts, so it runs before the server loads.

const execve = process.execve;
if (
  process.argv[2] === 'start' &&
  process.platform === 'linux' &&
  process.env.MALLOC_ARENA_MAX === undefined &&
  process.channel === undefined &&
  typeof execve === 'function'
) {
  execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    ...process.env,
    MALLOC_ARENA_MAX: '2',
  });
}
