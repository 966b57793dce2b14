// The bench runner's --runs option: how it is parsed, how lines are tagged
// with their run, and the summary line per case (min/median/max of the ratio,
// runs that met the target) — through the real run loop (benchMain) with
// stand-in suites that emit through the real measure.ts, stdout captured.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { benchMain } from '../src/bench-main.ts';
import { emit, line, summarize } from '../src/measure.ts';
import { BenchUsageError, caseKey, parseBenchArgs, summarizeRuns } from '../src/runs.ts';

const known = ['protocol', 'dispatcher'];

describe('parseBenchArgs', () => {
  it('reads --runs N, --runs=N and suites; no --runs means one plain run', () => {
    expect(parseBenchArgs(['dispatcher', '--runs', '5'], known)).toEqual({
      kind: 'run',
      suites: ['dispatcher'],
      runs: 5,
    });
    expect(parseBenchArgs(['--runs=3'], known)).toEqual({ kind: 'run', suites: known, runs: 3 });
    expect(parseBenchArgs([], known)).toEqual({ kind: 'run', suites: known, runs: undefined });
    expect(parseBenchArgs(['--runs', '2', '--help'], known)).toEqual({ kind: 'help' });
  });

  it('refuses a missing, non-integer, zero, huge or repeated --runs, unknown options and suites', () => {
    const bad = [
      ['--runs'],
      ['--runs', 'dispatcher'],
      ['--runs', '2.5'],
      ['--runs=0'],
      ['--runs', '-1'],
      ['--runs', '101'],
      ['--runs', '2', '--runs', '3'],
      ['--run', '2'],
      ['nosuch'],
    ];
    for (const argv of bad) {
      expect(() => parseBenchArgs(argv, known), argv.join(' ')).toThrow(BenchUsageError);
    }
  });
});

describe('summarizeRuns', () => {
  const l = (run: number, ratio: number, extra: Record<string, unknown> = {}) => ({
    bench: 'b',
    baseline: 'base',
    ratio,
    run,
    ...extra,
  });

  it('groups by bench, baseline and string fields; min, median (odd and even) and max', () => {
    const lines = [
      l(1, 2.1, {
        first_request: 'with_hello',
        meets_target: true,
        target_ratio: 2,
        cpu_ratio: 1.9,
      }),
      l(1, 0.9, { first_request: 'after_connect' }),
      l(2, 1.7, {
        first_request: 'with_hello',
        meets_target: false,
        target_ratio: 2,
        cpu_ratio: 2,
      }),
      l(2, 1.1, { first_request: 'after_connect' }),
      l(3, 2.3, {
        first_request: 'with_hello',
        meets_target: true,
        target_ratio: 2,
        cpu_ratio: 2.1,
      }),
    ];
    const [hello, after, ...rest] = summarizeRuns(lines);
    expect(rest).toEqual([]);
    expect(hello).toEqual({
      bench: 'b',
      baseline: 'base',
      first_request: 'with_hello',
      summary: 'runs',
      runs: 3,
      ratio_min: 1.7,
      ratio_median: 2.1,
      ratio_max: 2.3,
      target_ratio: 2,
      meets_target_runs: 2,
      runs_with_target: 3,
      other_ratios: { cpu_ratio: [1.9, 2, 2.1] },
    });
    expect(after).toMatchObject({
      first_request: 'after_connect',
      runs: 2,
      ratio_min: 0.9,
      ratio_median: 1,
      ratio_max: 1.1,
      meets_target_runs: null,
      runs_with_target: 0,
    });
    expect(after).not.toHaveProperty('other_ratios');
  });

  it('counts verdicts per case without letting them split the case', () => {
    const lines = [
      l(1, 0.4, { meets_target: false, verdict: 'out_of_reach' }),
      l(2, 0.5, { meets_target: false, verdict: 'missed' }),
      l(3, 0.8, { meets_target: true, verdict: 'met' }),
      l(4, 0.4, { meets_target: false, verdict: 'out_of_reach' }),
    ];
    const summaries = summarizeRuns(lines);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({
      runs: 4,
      meets_target_runs: 1,
      verdicts: { out_of_reach: 2, missed: 1, met: 1 },
    });
    expect(summarizeRuns([l(1, 1)])[0]).not.toHaveProperty('verdicts');
  });

  it("counts a part's own verdict apart, without letting it split the case either", () => {
    const lines = [
      l(1, 0.4, { verdict: 'out_of_reach', p99_verdict: 'met' }),
      l(2, 0.5, { verdict: 'undecidable', p99_verdict: 'undecidable' }),
      l(3, 0.4, { verdict: 'out_of_reach', p99_verdict: 'met' }),
    ];
    const summaries = summarizeRuns(lines);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({
      runs: 3,
      verdicts: { out_of_reach: 2, undecidable: 1 },
      p99_verdicts: { met: 2, undecidable: 1 },
    });
    expect(summaries[0]).not.toHaveProperty('p99_verdict');
    // A string field that merely contains the word still tells cases apart.
    expect(caseKey(l(1, 1, { verdict_source: 'a' }))).not.toBe(
      caseKey(l(1, 1, { verdict_source: 'b' })),
    );
  });

  it('keys a case on its strings only, never on its measurements', () => {
    expect(caseKey(l(1, 2, { meets_target: true, p50_us: 3 }))).toBe(
      caseKey(l(2, 1, { meets_target: false, p50_us: 4 })),
    );
    expect(caseKey(l(1, 2, { unit: 'a' }))).not.toBe(caseKey(l(1, 2, { unit: 'b' })));
  });
});

describe('benchMain --runs', () => {
  afterEach(() => vi.restoreAllMocks());

  /** Runs benchMain with stdout captured: [exit code, JSON lines]. */
  async function run(argv: string[], suites: Record<string, () => Promise<void>>) {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    vi.spyOn(console, 'error').mockImplementation(() => {});
    vi.spyOn(console, 'log').mockImplementation((s: unknown) => out.push(`${String(s)}\n`));
    const code = await benchMain(argv, suites);
    vi.restoreAllMocks();
    const text = out.join('');
    return {
      code,
      text,
      lines: text
        .split('\n')
        .filter((s) => s.startsWith('{'))
        .map((s) => JSON.parse(s)),
    };
  }

  it('runs the suites N times, tags every line with its run, then one summary per case', async () => {
    let calls = 0;
    const ratios = [2.5, 1.5, 2.2];
    const suite = async () => {
      const r = ratios[calls++] as number;
      const ours = summarize([r * 1000]);
      const base = summarize([1000]);
      emit({ ...line('x.case', ours, 'x.base', base), target_ratio: 2, meets_target: r >= 2 });
      emit({ ...line('x.case', ours, 'x.other_base', base) });
    };
    const { code, lines } = await run(['x', '--runs', '3'], { x: suite });
    expect(code).toBe(0);
    expect(calls).toBe(3);
    expect(lines.slice(0, 6).map((o) => [o.baseline, o.run])).toEqual([
      ['x.base', 1],
      ['x.other_base', 1],
      ['x.base', 2],
      ['x.other_base', 2],
      ['x.base', 3],
      ['x.other_base', 3],
    ]);
    expect(lines.slice(6)).toEqual([
      expect.objectContaining({
        bench: 'x.case',
        baseline: 'x.base',
        summary: 'runs',
        runs: 3,
        ratio_min: 1.5,
        ratio_median: 2.2,
        ratio_max: 2.5,
        meets_target_runs: 2,
      }),
      expect.objectContaining({ baseline: 'x.other_base', runs: 3, meets_target_runs: null }),
    ]);
    // Back to plain lines afterwards: no run tag, no summary, nothing carried over.
    const plain = await run(['x'], {
      x: async () => emit(line('y', summarize([1]), 'z', summarize([1]))),
    });
    expect(plain.lines).toEqual([expect.not.objectContaining({ run: expect.anything() })]);
  });

  it('exits 2 with the usage on a bad --runs, and documents --runs in --help', async () => {
    const suites = { x: async () => {} };
    const bad = await run(['--runs', '0'], suites);
    expect(bad.code).toBe(2);
    expect(bad.lines).toEqual([]);
    const help = await run(['--help'], suites);
    expect(help.code).toBe(0);
    expect(help.text).toMatch(/--runs N/);
    expect(help.text).toMatch(/meets_target_runs/);
  });
});
