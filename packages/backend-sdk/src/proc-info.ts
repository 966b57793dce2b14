// Facts about processes read from Linux's /proc: the boot id, and when a
// process started. Start times are computed the same way for our own
// identity and for a process we verify, so the two compare exactly.
import { readFile } from 'node:fs/promises';
import { BackendSdkError } from './errors.js';

/** USER_HZ: fixed at 100 in the Linux user ABI on every mainstream architecture. */
const CLOCK_TICKS_PER_SECOND = 100;

export type ProcInfoErrorCode = 'NO_SUCH_PROCESS' | 'UNREADABLE' | 'MALFORMED';

export class ProcInfoError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:ProcInfoError';
  override readonly name = 'ProcInfoError';
  declare readonly code: ProcInfoErrorCode;
  constructor(code: ProcInfoErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

async function readProc(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ProcInfoError(
      code === 'ENOENT' || code === 'ESRCH' ? 'NO_SUCH_PROCESS' : 'UNREADABLE',
      `cannot read ${path}: ${code}`,
      error,
    );
  }
}

let bootIdValue: Promise<string> | undefined;

/**
 * The trimmed content of /proc/sys/kernel/random/boot_id. Read once per
 * process: it cannot change while we run, and a probe should not pay a
 * file read for it.
 */
export function bootId(): Promise<string> {
  bootIdValue ??= readProc('/proc/sys/kernel/random/boot_id').then((text) => text.trim());
  bootIdValue.catch(() => {
    bootIdValue = undefined;
  });
  return bootIdValue;
}

let bootTimeSeconds: number | undefined;

/** System boot time (Unix seconds), from the `btime` line of /proc/stat. */
export async function bootTime(): Promise<number> {
  if (bootTimeSeconds !== undefined) return bootTimeSeconds;
  const stat = await readProc('/proc/stat');
  const match = /^btime (\d+)$/m.exec(stat);
  if (!match) throw new ProcInfoError('MALFORMED', '/proc/stat has no btime line');
  bootTimeSeconds = Number(match[1]);
  return bootTimeSeconds;
}

/**
 * Parses the start time (clock ticks since boot, field 22) out of the text
 * of /proc/<pid>/stat. The command name (field 2) is in parentheses and may
 * itself hold spaces or parentheses, so fields are counted from the last ')'.
 */
export function startTicksFromStat(stat: string): number {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new ProcInfoError('MALFORMED', 'stat line has no command name');
  const fields = stat.slice(close + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const ticks = Number(fields[19]);
  if (!Number.isSafeInteger(ticks) || ticks < 0)
    throw new ProcInfoError('MALFORMED', `bad start time field ${JSON.stringify(fields[19])}`);
  return ticks;
}

/** When `pid` started, in Unix milliseconds (10 ms resolution). */
export async function processStartTimeMs(pid: number): Promise<number> {
  const [stat, boot] = await Promise.all([readProc(`/proc/${pid}/stat`), bootTime()]);
  return boot * 1000 + (startTicksFromStat(stat) * 1000) / CLOCK_TICKS_PER_SECOND;
}
