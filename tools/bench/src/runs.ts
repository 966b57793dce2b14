// `npm run bench -- --runs N`: the command line of the bench runner and the
// summary printed after N runs of the same suites — one line per case with
// the min, median and max of its ratio over the runs and how many runs met
// the target, since one run on a shared machine proves little either way.

/** What the runner was asked to do. */
export type BenchArgs =
  | { kind: 'help' }
  | { kind: 'list' }
  /** `runs` is undefined without --runs: one run, lines as they always were, no summary. */
  | { kind: 'run'; suites: string[]; runs: number | undefined };

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

/** The longest --runs accepted: a guard against a typo, not a limit of the harness. */
export const MAX_RUNS = 100;

/**
 * Parses `[--help] [--list] [--runs N | --runs=N] [suite ...]`. No suite
 * named means every suite. Throws BenchUsageError on a bad --runs or an
 * unknown suite or option.
 */
export function parseBenchArgs(argv: readonly string[], known: readonly string[]): BenchArgs {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help' };
  if (argv.includes('--list')) return { kind: 'list' };
  const suites: string[] = [];
  let runs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--runs' || arg.startsWith('--runs=')) {
      if (runs !== undefined) throw new BenchUsageError('--runs given twice');
      const value = arg === '--runs' ? argv[++i] : arg.slice('--runs='.length);
      runs = parseRuns(value);
    } else if (arg.startsWith('-')) {
      throw new BenchUsageError(`unknown option ${arg}`);
    } else {
      suites.push(arg);
    }
  }
  const unknown = suites.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new BenchUsageError(`unknown suite(s): ${unknown.join(', ')}`);
  return { kind: 'run', suites: suites.length > 0 ? suites : [...known], runs };
}

function parseRuns(value: string | undefined): number {
  if (value === undefined || !/^[0-9]+$/.test(value)) {
    throw new BenchUsageError(`--runs needs a whole number of runs, got ${value ?? 'nothing'}`);
  }
  const n = Number(value);
  if (n < 1 || n > MAX_RUNS) throw new BenchUsageError(`--runs must be 1 to ${MAX_RUNS}, got ${n}`);
  return n;
}

/** A line as a case emitted it (with `run` added under --runs). */
export type EmittedLine = { bench: string; baseline: string; [field: string]: unknown };

/** A verdict on the whole target (`verdict`) or on one part of it (`p99_verdict`). */
const VERDICT_FIELD = /^(?:\w+_)?verdict$/;

/** Fields that are strings on a line but say nothing about which case it is. */
const notIdentity = (field: string) => field === 'error' || VERDICT_FIELD.test(field);

/**
 * Which case a line belongs to across runs: bench, baseline and every other
 * string-valued field (e.g. `first_request: 'with_hello'`, `unit`), in the
 * order the case wrote them. Numbers and booleans are measurements.
 */
export function caseKey(line: EmittedLine): string {
  const parts: [string, unknown][] = [];
  for (const [k, v] of Object.entries(line)) {
    if (typeof v === 'string' && !notIdentity(k)) parts.push([k, v]);
  }
  return JSON.stringify(parts);
}

function median(sorted: readonly number[]): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const r3 = (n: number) => Number(n.toPrecision(3));

/** [min, median, max] of the finite numbers given. */
export function spanOf(values: readonly number[]): [number, number, number] | null {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  return [r3(sorted[0] as number), r3(median(sorted)), r3(sorted.at(-1) as number)];
}

/** Numeric fields named like a ratio (other than `ratio` and targets), summarised too. */
const OTHER_RATIO = /ratio/;
const NOT_SUMMARISED = new Set(['ratio', 'target_ratio', 'run']);

/**
 * One summary line per case over the runs, in the order cases first
 * appeared: `ratio_min`, `ratio_median`, `ratio_max`, `runs` (lines seen),
 * `meets_target_runs` (lines with `meets_target: true`; null when the case
 * states no target), `verdicts` ({met, out_of_reach, undecidable, missed}:
 * how many runs got each, for cases that judge their target against a
 * same-run floor; see verdict.ts) and likewise `p99_verdicts` for a part's
 * own `p99_verdict`, `target_ratio` when the lines give one, and
 * `other_ratios` ({field: [min, median, max]}) for every other numeric
 * field named like a ratio (cpu_ratio, ratio_of_medians, …).
 */
export function summarizeRuns(lines: readonly EmittedLine[]): EmittedLine[] {
  const groups = new Map<string, EmittedLine[]>();
  for (const l of lines) {
    const key = caseKey(l);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [l]);
    else group.push(l);
  }
  const out: EmittedLine[] = [];
  for (const group of groups.values()) {
    const first = group[0] as EmittedLine;
    const identity: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(first)) {
      if (typeof v === 'string' && !notIdentity(k)) identity[k] = v;
    }
    const ratios = spanOf(group.map((l) => l.ratio).filter((v) => typeof v === 'number'));
    const stated = group.filter((l) => typeof l.meets_target === 'boolean');
    // `verdict` counted as `verdicts`, a part's `p99_verdict` as `p99_verdicts`.
    const verdicts: Record<string, Record<string, number>> = {};
    for (const l of group) {
      for (const [k, v] of Object.entries(l)) {
        if (typeof v !== 'string' || !VERDICT_FIELD.test(k)) continue;
        const counts = verdicts[`${k}s`] ?? {};
        counts[v] = (counts[v] ?? 0) + 1;
        verdicts[`${k}s`] = counts;
      }
    }
    const other: Record<string, [number, number, number]> = {};
    const names = new Set<string>();
    for (const l of group) {
      for (const [k, v] of Object.entries(l)) {
        if (typeof v === 'number' && OTHER_RATIO.test(k) && !NOT_SUMMARISED.has(k)) names.add(k);
      }
    }
    for (const name of names) {
      const span = spanOf(group.map((l) => l[name]).filter((v) => typeof v === 'number'));
      if (span !== null) other[name] = span;
    }
    const target = first.target_ratio;
    out.push({
      ...identity,
      bench: first.bench,
      baseline: first.baseline,
      summary: 'runs',
      runs: group.length,
      ratio_min: ratios?.[0] ?? null,
      ratio_median: ratios?.[1] ?? null,
      ratio_max: ratios?.[2] ?? null,
      ...(typeof target === 'number' ? { target_ratio: target } : {}),
      meets_target_runs: stated.length > 0 ? stated.filter((l) => l.meets_target).length : null,
      runs_with_target: stated.length,
      ...verdicts,
      ...(Object.keys(other).length > 0 ? { other_ratios: other } : {}),
    });
  }
  return out;
}
