// What the capacity suite reads of a process in /proc/<pid>/stat: CPU time
// and minor page faults. The fields after the command name (which may hold
// spaces and parentheses, so the split starts after its last ')').
import { readFileSync } from 'node:fs';

/** USER_HZ on Linux: utime and stime are in ticks of 10 ms. */
const TICK_US = 1e6 / 100;

/** Fields 3 onwards of /proc/<pid>/stat (index 0 is the state), or null if the process is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** user+system CPU µs of the processes in `pids` still alive. */
export function treeCpuUs(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    if (fields !== null) total += (Number(fields[11]) + Number(fields[12])) * TICK_US;
  }
  return total;
}

/** Minor page faults of `pid` so far (minflt, field 10); NaN if it is gone. */
export function minorFaults(pid: number): number {
  const fields = statFields(pid);
  return fields === null ? Number.NaN : Number(fields[7]);
}
