// Types of thread-cpu.mjs, for the suites' TypeScript (settle.ts, capacity-throughput.ts).
export interface ThreadCpu {
  main: number;
  helpers: number;
}
export function threadCpuUs(pid: number): ThreadCpu;
export function threadCpuOf(pids: readonly number[]): ThreadCpu;
export const SETTLE_WINDOW_MS: number;
export const SETTLED_SHARE: number;
export function helpersSettled(before: ThreadCpu, after: ThreadCpu): boolean;
