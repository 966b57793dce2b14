// The load generator of the dispatcher suite: c/httpload.c, compiled into
// bin/ on demand, and a process-tree CPU meter read from /proc — so a line
// can say what each server spent per request, not only how many it served
// (the throughput of a shared 2-core machine moves with its neighbours;
// CPU per request much less).
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { buildCProgram, cBinaryPath } from '../c-programs.ts';

const run = promisify(execFile);
const binary = cBinaryPath('httpload');

export type LoadMode = 'close' | 'keepalive';

export interface LoadResult {
  requests: number;
  errors: number;
  resets: number;
  refused: number;
  connects: number;
  seconds: number;
}

/** Compiles the generator into tools/bench/bin unless it is up to date. */
export const buildLoadGenerator = (): Promise<string> => buildCProgram('httpload');

/** One closed-loop run: `concurrency` connections against 127.0.0.1:port. */
export async function runLoad(
  port: number,
  mode: LoadMode,
  concurrency: number,
  warmupSeconds: number,
  seconds: number,
): Promise<LoadResult> {
  const { stdout } = await run(binary, [
    '127.0.0.1',
    String(port),
    mode,
    String(concurrency),
    String(warmupSeconds),
    String(seconds),
  ]);
  const r = JSON.parse(stdout.trim()) as LoadResult;
  if (typeof r.requests !== 'number' || typeof r.seconds !== 'number') {
    throw new Error(`httpload: unexpected output ${JSON.stringify(stdout)}`);
  }
  return r;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime, in seconds, of a process and all its direct children. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  const add = (p: string) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      return Number(fields[1]);
    } catch {
      return -1;
    }
  };
  add(String(pid));
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) add(entry);
    } catch {
      // gone
    }
  }
  return ticks / TICKS_PER_SECOND;
}
