// Reading /proc: resident memory, start time and the children of a process
// (fd counts and /proc/<pid>/stat parsing are @handoff/testkit's). Linux only,
// synchronous and cheap enough to run every second; what the numbers mean
// over a run is sampler.ts's.
import { readdirSync, readFileSync } from 'node:fs';
import { readProcStat } from '@handoff/testkit/children';

export { openFds } from '@handoff/testkit/fds';

/** VmRSS in KiB, or undefined when the process is gone (or a zombie, which has none). */
export function rssKib(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) : undefined;
}

/** A process as first seen: its pid and start time, so a recycled pid is not mistaken for it. */
export interface ProcessMark {
  pid: number;
  startTicks: string;
}

export function markProcess(pid: number): ProcessMark | undefined {
  const stat = readProcStat(pid);
  return stat ? { pid, startTicks: stat.startTicks } : undefined;
}

/** Still running (zombies count as gone: they hold no fds, no memory, no sockets). */
export function stillRunning(mark: ProcessMark): boolean {
  const stat = readProcStat(mark.pid);
  return stat !== undefined && stat.startTicks === mark.startTicks && stat.state !== 'Z';
}

/**
 * Run from source, a process may start tsx's compiler service (an esbuild
 * child) on first use, or not at all: it says nothing about the code under
 * soak, so it is not counted.
 */
const TOOLING_CHILDREN = new Set(['esbuild']);

/** Every process's children, from one pass over /proc (zombies included: an unreaped child is a leak too). */
export function childrenByParent(): Map<number, number[]> {
  const out = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(entry);
    if (!stat || TOOLING_CHILDREN.has(stat.comm)) continue;
    const list = out.get(stat.ppid);
    if (list) list.push(Number(entry));
    else out.set(stat.ppid, [Number(entry)]);
  }
  return out;
}
