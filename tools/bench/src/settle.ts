// Warm-up until the JIT has settled. A Node process that has just started,
// or runs code new to it, spends its first seconds in V8's optimizing
// compiler, which works on helper threads. On a 2-core machine those threads
// take a core from the processes being timed, and the more code a server
// runs, the longer they do: measured from a fixed 500 Hellos, the broker's
// compiler still took 270–320 ms of CPU in the 6 s that followed, and every
// p99 in the loop was 2.3–3.3× its steady-state value (tools/bench/RESULTS.md,
// 2026-12-05 10:55). So warm-ups here run until the helper threads of every
// process involved (the servers, and this one, which runs the client code)
// are nearly idle, rather than for a count chosen once.
import { helpersSettled, SETTLE_WINDOW_MS, threadCpuOf } from './thread-cpu.mjs';

export interface SettleOptions {
  /** Rounds of `work` before the first check (code paths reached at least once). */
  minRounds: number;
  /** Give up waiting after this long (the line then says `jit_settled: false`). */
  capMs?: number;
}

export interface Settled {
  /** How long the warm-up took, in ms. */
  warmup_ms: number;
  /** false: the cap was reached with the helpers still busy. */
  jit_settled: boolean;
}

/**
 * Runs `work` (one warm-up round: a Hello to each server, say) at least
 * `minRounds` times, then until the helper threads of `pids` and of this
 * process spend at most SETTLED_SHARE of their CPU over SETTLE_WINDOW_MS
 * of rounds (thread-cpu.mjs), or `capMs` (default 20 s) has passed.
 */
export async function warmUntilSettled(
  work: () => Promise<unknown>,
  pids: readonly number[],
  options: SettleOptions,
): Promise<Settled> {
  const started = performance.now();
  const capAt = started + (options.capMs ?? 20_000);
  const all = [...new Set([process.pid, ...pids])];
  for (let i = 0; i < options.minRounds; i++) await work();
  for (;;) {
    const before = threadCpuOf(all);
    const windowEnds = performance.now() + SETTLE_WINDOW_MS;
    while (performance.now() < windowEnds) await work();
    const settled = helpersSettled(before, threadCpuOf(all));
    if (settled || performance.now() >= capAt)
      return { warmup_ms: Math.round(performance.now() - started), jit_settled: settled };
  }
}

/** Several warm-ups as one: the longest, and settled only if every one was. */
export function allSettled(warmups: readonly Settled[]): Settled {
  return {
    warmup_ms: Math.max(0, ...warmups.map((w) => w.warmup_ms)),
    jit_settled: warmups.every((w) => w.jit_settled),
  };
}
