// How busy a process's helper threads are: its CPU split between the main
// thread and the rest (V8's optimizing compiler and GC helpers, libuv's
// pool), read from /proc, and the rule that says a warm-up is over. Plain
// JavaScript so that the throughput client (capacity-client.mjs, run by
// plain node) and the suites' TypeScript (settle.ts) share one rule.
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU µs (user + system) of `pid` so far, split between its main thread
 * and the rest: V8's helpers (the optimizing compiler, the parallel and
 * concurrent GC) and libuv's pool. A process that has just started, or
 * runs new code, spends seconds compiling on those helpers, on the same
 * cores as the load it serves; a steady state has them nearly idle.
 * Zeros once the process is gone.
 */
export function threadCpuUs(pid) {
  const usPerTick = 1e6 / 100; // USER_HZ = 100 on Linux
  let main = 0;
  let helpers = 0;
  let tasks;
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { main, helpers };
  }
  for (const task of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const us = (Number(fields[11]) + Number(fields[12])) * usPerTick;
      if (Number(task) === pid) main += us;
      else helpers += us;
    } catch {
      // the thread is gone
    }
  }
  return { main, helpers };
}

/** threadCpuUs summed over `pids`. */
export function threadCpuOf(pids) {
  let main = 0;
  let helpers = 0;
  for (const pid of pids) {
    const cpu = threadCpuUs(pid);
    main += cpu.main;
    helpers += cpu.helpers;
  }
  return { main, helpers };
}

/** A settle check spans this much work. */
export const SETTLE_WINDOW_MS = 500;

/**
 * Settled when the helper threads spent at most this share of the CPU
 * over the last window: what the GC's helpers take in a steady state (a
 * few %), well under what compiling takes (20–40%).
 */
export const SETTLED_SHARE = 0.1;

/** Whether the helpers were quiet between two threadCpuOf readings (see SETTLED_SHARE). */
export function helpersSettled(before, after) {
  const helpers = after.helpers - before.helpers;
  return helpers <= SETTLED_SHARE * (helpers + after.main - before.main);
}
