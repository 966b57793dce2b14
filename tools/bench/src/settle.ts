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
import { threadCpuUs } from './broker/probe-wire.mjs';

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

/** One check spans this much work. */
const WINDOW_MS = 500;
/**
 * Settled when the helper threads spent at most this share of the CPU
 * of the processes over the last window: what the GC's helpers take in a
 * steady state (a few %), well under what compiling takes (20–40%).
 */
const SETTLED_SHARE = 0.1;

/**
 * Runs `work` (one warm-up round: a Hello to each server, say) at least
 * `minRounds` times, then until the helper threads of `pids` and of this
 * process spend at most SETTLED_SHARE of their CPU over a WINDOW_MS of
 * rounds, or `capMs` (default 20 s) has passed.
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
    const before = cpuOf(all);
    const windowEnds = performance.now() + WINDOW_MS;
    while (performance.now() < windowEnds) await work();
    const after = cpuOf(all);
    const helpers = after.helpers - before.helpers;
    const total = helpers + after.main - before.main;
    const settled = helpers <= SETTLED_SHARE * total;
    if (settled || performance.now() >= capAt)
      return { warmup_ms: Math.round(performance.now() - started), jit_settled: settled };
  }
}

function cpuOf(pids: readonly number[]): { main: number; helpers: number } {
  let main = 0;
  let helpers = 0;
  for (const pid of pids) {
    const cpu = threadCpuUs(pid);
    main += cpu.main;
    helpers += cpu.helpers;
  }
  return { main, helpers };
}
