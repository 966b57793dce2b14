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
  return startTicksIn(statBuffer, length);
}

const CLOSE_PAREN = 0x29;
const SPACE = 0x20;
const DIGIT_0 = 0x30;

/**
 * startTicksOf on the bytes of a stat line, without making a string of
 * them (the endpoint cache's hit path reads one per connect).
 */
export function startTicksIn(bytes: Uint8Array, length: number): number | null {
  if (length <= 0 || length > bytes.length) return null;
  const close = bytes.lastIndexOf(CLOSE_PAREN, length - 1);
  if (close < 0) return null;
  // After ") " comes field 3 (state); field 22 is the 20th from there.
  let at = close + 2;
  for (let field = 3; field < 22; field++) {
    const space = bytes.indexOf(SPACE, at);
    if (space < 0 || space >= length) return null;
    at = space + 1;
  }
  let ticks = 0;
  let end = at;
  for (; end < length; end++) {
    const digit = bytes[end]! - DIGIT_0;
    if (digit < 0 || digit > 9) break;
    ticks = ticks * 10 + digit;
  }
  // The field must be digits only, up to a space, a newline or the end.
  const after = end < length ? bytes[end] : SPACE;
  if (end === at || (after !== SPACE && after !== 0x0a) || !Number.isSafeInteger(ticks))
    return null;
  return ticks;
}
