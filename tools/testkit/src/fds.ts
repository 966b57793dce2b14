// Counting file descriptors through /proc (Linux): what leak checks compare
// before and after. Reads only; which count a test expects is the test's.
import { readdirSync, readlinkSync } from 'node:fs';

/** How many fds this process has open. */
export function openFds(): number;
/** How many fds process `pid` has open, or undefined once it is gone. */
export function openFds(pid: number): number | undefined;
export function openFds(pid?: number): number | undefined {
  if (pid === undefined) return readdirSync('/proc/self/fd').length;
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/**
 * An fd count once it holds still: `agreeing` readings `intervalMs` apart
 * that are equal (or the last reading after `maxMs`). Of this process, or of
 * `pid` (-1 once it is gone). For leak checks around work whose last fd
 * closes a moment after the caller is told it is done.
 */
export async function quietFdCount(
  options: { pid?: number; intervalMs?: number; agreeing?: number; maxMs?: number } = {},
): Promise<number> {
  const { pid, intervalMs = 50, agreeing = 2, maxMs = 2000 } = options;
  const count = () => (pid === undefined ? openFds() : (openFds(pid) ?? -1));
  let last = count();
  let same = 1;
  for (let waited = 0; same < agreeing && waited < maxMs; waited += intervalMs) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    const now = count();
    same = now === last ? same + 1 : 1;
    last = now;
  }
  return last;
}

/** The fds this process has open, as numbers. */
export function openFdSet(): Set<number> {
  return new Set(readdirSync('/proc/self/fd').map(Number));
}

/**
 * This process's open fds by what they are (fd → readlink target). Two
 * tables tell what a call left open even when something else closed an fd
 * meanwhile (a loader's cache write finishing, say), where counts mislead.
 * An fd gone between the listing and its readlink (the listing's own, or
 * one closing) is left out.
 */
export function openFdTargets(): Map<string, string> {
  const fds = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      fds.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // Gone while we looked.
    }
  }
  return fds;
}

/**
 * The entries of `to` that `from` lacks or had pointing elsewhere, as
 * "fd → target": with `from` taken before a call and `to` after, what the
 * call left open; the other way round, what closed meanwhile.
 */
export function fdTargetsAdded(from: Map<string, string>, to: Map<string, string>): string[] {
  return [...to]
    .filter(([fd, target]) => from.get(fd) !== target)
    .map(([fd, target]) => `${fd} → ${target}`);
}
