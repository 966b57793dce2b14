// Counting file descriptors through /proc (Linux): what leak checks compare
// before and after. Reads only; which count a test expects is the test's.
import { readdirSync } from 'node:fs';

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

/** The fds this process has open, as numbers. */
export function openFdSet(): Set<number> {
  return new Set(readdirSync('/proc/self/fd').map(Number));
}
