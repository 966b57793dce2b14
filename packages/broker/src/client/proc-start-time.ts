// When a process started, as the kernel records it: field 22 of
// /proc/<pid>/stat (clock ticks since boot). The endpoint cache compares it
// with the value it recorded, so a recycled pid or a restarted daemon never
// passes for the one the broker vouched for. Synchronous on purpose: /proc
// never waits on a disk, and the cache's hit path should not pay a thread
// pool round trip. Its own file so the client entry stays free of
// @handoff/backend-sdk (which has the async twin, proc-info.ts).
import { readFileSync, readSync } from 'node:fs';

/**
 * The start time of `pid` in clock ticks since boot, or null when the
 * process is gone or its stat line cannot be read or parsed.
 */
export function procStartTicks(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  return startTicksOf(stat);
}

/**
 * Field 22 of a /proc/<pid>/stat line. The command name (field 2) is in
 * parentheses and may hold spaces or parentheses itself, so fields are
 * counted from the last ')'.
 */
export function startTicksOf(stat: string): number | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  // After ") " comes field 3 (state); field 22 is the 20th from there.
  let at = close + 2;
  for (let field = 3; field < 22; field++) {
    at = stat.indexOf(' ', at) + 1;
    if (at === 0) return null;
  }
  const end = stat.indexOf(' ', at);
  const text = end < 0 ? stat.slice(at) : stat.slice(at, end);
  const ticks = Number(text);
  return text.length > 0 && Number.isSafeInteger(ticks) && ticks >= 0 ? ticks : null;
}

const statBuffer = Buffer.alloc(2048);

/**
 * The start time read through an open /proc/<pid>/stat: one pread, about a
 * sixth of opening the file each time. The fd stands for the process it was
 * opened on, not for its pid number: once that process is gone the read
 * fails (ESRCH), even if another process has the number now. Null then, or
 * when the line cannot be parsed.
 */
export function procStartTicksAt(statFd: number): number | null {
  let length: number;
  try {
    length = readSync(statFd, statBuffer, 0, statBuffer.length, 0);
  } catch {
    return null;
  }
  return startTicksOf(statBuffer.toString('latin1', 0, length));
}
