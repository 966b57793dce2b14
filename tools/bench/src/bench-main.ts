// The bench runner's command line and run loop (main.ts calls it with the
// real suites; tests call it with stand-ins): suites by name, --runs N,
// and the summary over the runs (runs.ts).
import { setRun, takeRecordedLines } from './measure.ts';
import { BenchUsageError, MAX_RUNS, parseBenchArgs, summarizeRuns } from './runs.ts';

export function benchUsage(suites: Record<string, unknown>): string {
  return `Usage: npm run bench -- [--list] [--runs N] [suite ...]
Suites: ${Object.keys(suites).join(', ')} (every suite when none is named)
  --list     print the suite names
  --runs N   run the named suites N times (1-${MAX_RUNS}); every line gets "run": i
             (1-based), and after the last run one line per case (bench, baseline and its
             other string fields such as first_request) with "summary":"runs", ratio_min,
             ratio_median, ratio_max, runs, target_ratio, meets_target_runs (how many runs
             met the target; null when the case states none) and other_ratios
             ({field: [min, median, max]} for fields such as cpu_ratio)
Each case prints {"bench","ops_per_s","ns_per_op","baseline","ratio",...} on one line.`;
}

/**
 * The runner behind main.ts: parses argv, runs the suites (N times under
 * --runs), prints the summary lines. Resolves to the exit code: 0, 1 when a
 * case could not measure (it set process.exitCode), 2 on a usage error.
 */
export async function benchMain(
  argv: readonly string[],
  suites: Record<string, () => Promise<void>>,
): Promise<number> {
  const usage = benchUsage(suites);
  let args: ReturnType<typeof parseBenchArgs>;
  try {
    args = parseBenchArgs(argv, Object.keys(suites));
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    console.error(`${err.message}\n${usage}`);
    return 2;
  }
  if (args.kind === 'help') {
    console.log(usage);
    return 0;
  }
  if (args.kind === 'list') {
    for (const name of Object.keys(suites)) console.log(name);
    return 0;
  }
  const runs = args.runs ?? 1;
  takeRecordedLines(); // nothing from an earlier call counts in this summary
  try {
    for (let run = 1; run <= runs; run++) {
      if (args.runs !== undefined) setRun(run);
      for (const name of args.suites) {
        console.error(
          args.runs !== undefined ? `# run ${run}/${runs}: suite ${name}` : `# suite ${name}`,
        );
        await suites[name]!();
      }
    }
  } finally {
    setRun(undefined);
  }
  if (args.runs !== undefined) {
    console.error(`# summary of ${runs} run(s)`);
    for (const summary of summarizeRuns(takeRecordedLines())) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    }
  }
  // A case that could not measure (a missing feature: `"ok":false`) set it.
  return Number(process.exitCode ?? 0);
}
