// protocol.encode_framed.small.fresh_processes: the encode pair run in N
// fresh Node processes, one after another, so the line shows how the ratio
// is distributed across processes (min, median, max, how many met the
// target) rather than what one process's JIT happened to do.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { emit, line, summarize } from '../measure.ts';
import { PAIRS } from './encode-pair.ts';

const run = promisify(execFile);

/** encode_framed.small must be at least this many times protobufjs, in every process. */
export const ENCODE_TARGET = 1.5;
const DEFAULT_PROCESSES = 10;
/** protocol.bench.ts run as a script measures one encode pair and prints it. */
const childPath = fileURLToPath(new URL('../protocol.bench.ts', import.meta.url));
export const CHILD_FLAG = '--encode-pair-child';
const benchRoot = fileURLToPath(new URL('../..', import.meta.url));

interface ChildResult {
  ours: number;
  base: number;
  ratio: number;
}

/** Processes to run: HANDOFF_BENCH_FRESH_PROCESSES (0 skips the case). */
export function freshProcessCount(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.HANDOFF_BENCH_FRESH_PROCESSES;
  if (raw === undefined || raw === '') return DEFAULT_PROCESSES;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`HANDOFF_BENCH_FRESH_PROCESSES must be a whole number >= 0, got ${raw}`);
  }
  return n;
}

export async function freshEncodeCase(): Promise<void> {
  const processes = freshProcessCount();
  if (processes === 0) return;
  const results: ChildResult[] = [];
  for (let i = 0; i < processes; i++) {
    // The same flags as the bench itself (tsx for the bench's TypeScript,
    // the packages from their built dist).
    const { stdout } = await run(process.execPath, ['--import', 'tsx', childPath, CHILD_FLAG], {
      cwd: benchRoot,
    });
    const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as ChildResult;
    if (typeof r.ratio !== 'number') throw new Error(`encode pair child: unexpected ${stdout}`);
    results.push(r);
    console.error(`#   fresh process ${i + 1}/${processes}: ratio ${r.ratio.toFixed(2)}`);
  }
  const ratios = results.map((r) => r.ratio).sort((a, b) => a - b);
  const met = ratios.filter((r) => r >= ENCODE_TARGET).length;
  const round2 = (n: number) => Number(n.toFixed(2));
  emit({
    ...line(
      'protocol.encode_framed.small.fresh_processes',
      summarize(results.map((r) => r.ours)),
      'protobufjs.static.encode',
      summarize(results.map((r) => r.base)),
      {
        payload_bytes: 64,
        processes,
        ratio_of: `median over processes of each one's median of ${PAIRS} alternating round pairs`,
        min_ratio: round2(ratios[0] ?? 0),
        max_ratio: round2(ratios.at(-1) ?? 0),
        ratios: ratios.map(round2),
        met_target: met,
        target_ratio: ENCODE_TARGET,
        target: `>= ${ENCODE_TARGET}x in ${processes} of ${processes} processes`,
        meets_target: met === processes,
      },
    ),
    ratio: round2(ratios[Math.floor(ratios.length / 2)] ?? 0),
  });
}
