// The measuring side of every benchmark: timing loops, percentiles, and the
// one JSON line per case that `npm run bench` prints. A ratio is always
// against a baseline measured in the same process run, never a remembered
// number, because these machines are shared and noisy.

export interface BenchLine {
  bench: string;
  ops_per_s: number;
  ns_per_op: number;
  baseline: string;
  ratio: number;
  [extra: string]: unknown;
}

export interface Throughput {
  opsPerSec: number;
  nsPerOp: number;
  /** Relative spread of the per-round rates (max-min)/median. */
  spread: number;
}

/**
 * Runs `fn` (which performs `opsPerCall` operations) in rounds of at least
 * `minRoundMs`, after a warm-up, and reports the median round's rate.
 */
export function timeSync(
  fn: () => void,
  { opsPerCall = 1, rounds = 7, minRoundMs = 150, warmupMs = 150 } = {},
): Throughput {
  const deadline = performance.now() + warmupMs;
  let batch = 1;
  while (performance.now() < deadline) {
    for (let i = 0; i < batch; i++) fn();
    batch = Math.min(batch * 2, 1 << 20);
  }
  // Size a batch so one round lasts about minRoundMs.
  batch = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    const dt = performance.now() - t0;
    if (dt >= minRoundMs / 4) {
      batch = Math.max(1, Math.ceil((batch * minRoundMs) / dt));
      break;
    }
    batch *= 2;
  }
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    const ns = Number(process.hrtime.bigint() - t0);
    rates.push((batch * opsPerCall * 1e9) / ns);
  }
  return summarize(rates);
}

/** Like timeSync for an async operation that performs `opsPerCall` ops. */
export async function timeAsync(
  fn: () => Promise<void>,
  { opsPerCall = 1, rounds = 5 } = {},
): Promise<Throughput> {
  await fn();
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    await fn();
    const ns = Number(process.hrtime.bigint() - t0);
    rates.push((opsPerCall * 1e9) / ns);
  }
  return summarize(rates);
}

export function summarize(rates: number[]): Throughput {
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const spread = median > 0 ? ((sorted.at(-1) ?? 0) - (sorted[0] ?? 0)) / median : 0;
  return { opsPerSec: median, nsPerOp: median > 0 ? 1e9 / median : 0, spread };
}

/** Percentile (0..100) of a list of samples, nearest-rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

const round = (n: number, digits = 3) => Number(n.toPrecision(digits));

/**
 * Builds the JSON line for a case. `ratio` is ours/baseline in ops/s, so
 * higher is better whatever the case measures.
 */
export function line(
  bench: string,
  ours: Throughput,
  baselineName: string,
  baseline: Throughput,
  extra: Record<string, unknown> = {},
): BenchLine {
  return {
    bench,
    ops_per_s: Math.round(ours.opsPerSec),
    ns_per_op: round(ours.nsPerOp),
    baseline: baselineName,
    baseline_ops_per_s: Math.round(baseline.opsPerSec),
    ratio: round(baseline.opsPerSec > 0 ? ours.opsPerSec / baseline.opsPerSec : 0, 2),
    spread: round(ours.spread, 2),
    ...extra,
  };
}

/** Under `--runs N` (main.ts): the run being measured (1-based), and every line it emitted. */
let currentRun: number | undefined;
const recorded: BenchLine[] = [];

/**
 * Tags every line emitted from now on with `"run": run` and records it for
 * the summary (`takeRecordedLines`); `undefined` stops both.
 */
export function setRun(run: number | undefined): void {
  currentRun = run;
}

/** The lines emitted while a run was set, in order; the record starts empty again. */
export function takeRecordedLines(): BenchLine[] {
  return recorded.splice(0);
}

export function emit(result: BenchLine): void {
  const out = currentRun === undefined ? result : { ...result, run: currentRun };
  if (currentRun !== undefined) recorded.push(out);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/**
 * A fresh random order of `0 … n-1` for each round of an interleaved loop.
 * Rotating a fixed order is not enough: each case would still always
 * follow the same neighbour, and on this machine what ran just before (a
 * process still on its CPU, or one that went idle) moves a latency by 15%
 * or more. Seeded, so a run can be repeated (`BENCH_SEED`, default 1).
 */
export function roundOrders(n: number, seed = Number(process.env.BENCH_SEED ?? 1)): () => number[] {
  // mulberry32: small, fast, and good enough to shuffle a handful of cases.
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  };
}
