// Summaries of the lifecycle cases' samples, and the line a case prints
// when it cannot measure: `"ok":false` with the reason, and a non-zero exit
// for the run, never numbers that look like a result.
import { emit, percentile } from '../measure.ts';

export interface Window {
  from: number;
  to: number;
}

export const inWindows = (at: number, windows: readonly Window[]): boolean =>
  windows.some((w) => at >= w.from && at <= w.to);

const ms = (n: number) => (Number.isFinite(n) ? Number(n.toFixed(2)) : null);

/** p50/p99/max of a list of ms samples, rounded, null when empty. */
export function latency(samples: readonly number[]): {
  p50_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  samples: number;
} {
  return {
    p50_ms: ms(percentile(samples, 50)),
    p99_ms: ms(percentile(samples, 99)),
    max_ms: ms(samples.length === 0 ? Number.NaN : Math.max(...samples)),
    samples: samples.length,
  };
}

/** How many of each error string. */
export function countErrors(errors: readonly (string | null)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const error of errors) if (error !== null) counts[error] = (counts[error] ?? 0) + 1;
  return counts;
}

/** The case could not be measured: says why, and makes the run exit non-zero. */
export function emitFailure(
  bench: string,
  error: unknown,
  extra: Record<string, unknown> = {},
): void {
  process.exitCode = 1;
  const message = error instanceof Error ? error.message : String(error);
  process.stdout.write(`${JSON.stringify({ bench, ok: false, error: message, ...extra })}\n`);
  console.error(`# ${bench}: FAILED: ${message}`);
}

/** A measured line (`ok: true`); a missed target shows as `meets_target: false`, as in every suite. */
export function emitResult(line: Parameters<typeof emit>[0] & { meets_target: boolean }): void {
  emit({ ...line, ok: true });
}
