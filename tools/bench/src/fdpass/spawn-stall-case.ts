// The fdpass suite's spawn case: runs spawn-stall.ts in a child with a
// broker-sized heap and turns its samples into one line. Throughput is
// spawns per second of caller time blocked, so higher is better as in every
// line; the blocked milliseconds themselves are in the *_blocked fields.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { type BenchLine, line, percentile, summarize } from '../measure.ts';
import { benchRoot, childExecArgv } from './paths.ts';

const HEAP_MB = 150;
const SPAWNS = 40;
/** fdpass's posix_spawn must block the caller at most half as long as a fork. */
const TARGET_RATIO = 2;

export async function spawnStallLine(): Promise<BenchLine> {
  const script = fileURLToPath(new URL('./spawn-stall.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    [...childExecArgv, script, String(HEAP_MB), String(SPAWNS)],
    { cwd: benchRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk;
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`fdpass spawn case: spawn-stall.ts exited with ${code}`);
  const result = JSON.parse(out) as {
    rss_mb: number;
    ours: number[];
    async: number[];
    node: number[];
  };
  const blocked = (ms: number[]) => ({
    p50_ms: round(percentile(ms, 50)),
    p99_ms: round(percentile(ms, 99)),
    max_ms: round(Math.max(...ms)),
  });
  const rate = (ms: number[]) => summarize(ms.map((m) => 1000 / m));
  const ours = rate(result.ours);
  const node = rate(result.node);
  const ratio = node.opsPerSec > 0 ? ours.opsPerSec / node.opsPerSec : 0;
  return line('fdpass.spawn.caller_blocked', ours, 'node.child_process.spawn', node, {
    unit: 'spawns per second of the caller thread blocked (median)',
    heap_rss_mb: result.rss_mb,
    spawns: SPAWNS,
    ours_blocked: blocked(result.ours),
    // spawnProcessAsync (what the broker uses): only the fds are prepared on
    // the caller's thread, the exec waits on a pool thread.
    async_blocked: blocked(result.async),
    node_blocked: blocked(result.node),
    p99_ratio: round(percentile(result.node, 99) / percentile(result.ours, 99)),
    target_ratio: TARGET_RATIO,
    meets_target: ratio >= TARGET_RATIO,
  });
}

const round = (n: number) => Number(n.toPrecision(3));
