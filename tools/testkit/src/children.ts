// Child processes for tests, read from /proc (Linux): which of ours are
// alive, a fixture spawned until it prints its ready line, and killing a
// process and waiting until it is gone. What a child does is its fixture's.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';

/** Node flags that run a workspace's TypeScript from source. */
export const tsxArgs: readonly string[] = ['--conditions=@handoff/source', '--import', 'tsx'];

/** The fields of /proc/<pid>/stat the kit and the soak use. */
export interface ProcStat {
  comm: string;
  state: string;
  ppid: number;
  startTicks: string;
}

/** /proc/<pid>/stat, or undefined once the process is gone; the command name may hold spaces and parentheses. */
export function readProcStat(pid: number | string): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  // After the command: state (field 3), ppid (4), …, starttime (22).
  return {
    comm: text.slice(text.indexOf('(') + 1, close),
    state: fields[0]!,
    ppid: Number(fields[1]),
    startTicks: fields[19]!,
  };
}

/** Dead but not reaped yet (or already gone). */
export function isZombie(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat === undefined || stat.state === 'Z';
}

/** Running: signalable and not a zombie. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch {
    return false;
  }
}

/** Our live child processes, from every thread's children list. */
export function childPids(): number[] {
  const pids: number[] = [];
  for (const task of readdirSync('/proc/self/task')) {
    try {
      const list = readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim();
      if (list) pids.push(...list.split(' ').map(Number));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  // A zombie is dead, just not reaped yet by its parent's exit handler.
  return pids.filter((pid) => !isZombie(pid));
}

/**
 * Every live process (but `except`, and this one) whose environment mentions
 * `text` — a test's temp dir finds the processes it started, even once they
 * were reparented (a broker's daemons after the broker died).
 */
export function processesMentioning(text: string, except: readonly number[] = []): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || except.includes(pid) || pid === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      // A zombie is already dead; only its parent has not reaped it yet.
      if (environ.includes(text) && !isZombie(pid)) found.push(pid);
    } catch {
      // Gone while we looked, or not ours to read.
    }
  }
  return found;
}

/** Kills a process we did not spawn and waits (up to 5 s) until it is gone. */
export async function killPid(pid: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A fixture process that said it is ready. */
export interface ReadyProcess {
  child: ChildProcess;
  /** The pid the fixture printed in its ready line. */
  pid: number;
  /** Signals it (SIGTERM by default) and waits for its exit; a no-op once it exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnReadyOptions {
  cwd?: string;
  /** Names the process in the error when it exits before ready. */
  label?: string;
  /** Escalates kill() to SIGKILL after this long. */
  forceAfterMs?: number;
}

/**
 * Spawns `command args` and waits for its first stdout line, the fixture
 * convention `ready <pid>`; rejects (with its stderr) if it exits first.
 */
export async function spawnReady(
  command: string,
  args: readonly string[],
  options: SpawnReadyOptions = {},
): Promise<ReadyProcess> {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) =>
      reject(
        new Error(`${options.label ?? 'process'} exited with ${code} before ready: ${stderr}`),
      ),
    );
  });
  return {
    child,
    pid: Number(line.split(' ')[1]),
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      const timer =
        options.forceAfterMs === undefined
          ? undefined
          : setTimeout(() => child.kill('SIGKILL'), options.forceAfterMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
