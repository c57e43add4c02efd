// Fuzz settings: a fixed seed and few runs inside `npm test`; `npm run fuzz` sets FUZZ_RUNS high
// and FUZZ_SEED=random. A failure prints its seed and path so it can be replayed exactly.
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 150);
export const FUZZ_SEED =
  process.env.FUZZ_SEED === 'random' ? Date.now() : Number(process.env.FUZZ_SEED ?? 20261123);
export const fcParams = { numRuns: FUZZ_RUNS, seed: FUZZ_SEED, endOnFailure: true } as const;
