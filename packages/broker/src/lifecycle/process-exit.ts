// Signalling a daemon and waiting for it to exit, for the processes the
// broker spawned (a SpawnedProcess) and for those it only knows by pid (one
// rediscovered or handed over). Deciding when to stop one is the registry's.
import { FdPassError, ProcessHandle, type SpawnedProcess } from '@handoff/fdpass';

/** Sends `name` to `pid`; a process already gone is not an error. */
export function signal(pid: number | undefined | null, name: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** Resolves when our child exits, at once if it already has ('exit' is not replayed). */
export function childExited(child: SpawnedProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A process we did not spawn, watched until it exits or the watch is cancelled. */
export interface ExitWatch {
  /** Resolves when the process exits; never settles once cancelled. */
  readonly exited: Promise<void>;
  /** Stops watching and releases what the watch holds (a pidfd or a timer). Idempotent. */
  cancel(): void;
}

/** How often a process is looked for where the kernel has no pidfd. */
const POLL_MS = 250;

/**
 * Watches a process we did not spawn (one rediscovered or handed over by a
 * predecessor): no 'exit' event and no waitpid for it. Held by a pidfd
 * where the kernel has them, the exit is seen the moment it happens, a
 * zombie counts as exited, and a pid reused meanwhile cannot hide it. Else
 * (no pidfd, an addon without ProcessHandle) kill(pid, 0) every 250 ms.
 * Neither keeps the event loop alive.
 */
export function watchExit(pid: number): ExitWatch {
  let handle: ProcessHandle;
  try {
    handle = ProcessHandle.open(pid);
  } catch (error) {
    if (error instanceof FdPassError && error.code === 'ESRCH')
      return { exited: Promise.resolve(), cancel: () => {} };
    return pollForExit(pid);
  }
  let cancelled = false;
  let fallback: ExitWatch | null = null;
  const exited = handle.exited({ ref: false }).then(
    () => handle.close(),
    (): Promise<void> => {
      // Closed by cancel(): stay pending. A failed watch: poll instead.
      handle.close();
      if (cancelled) return new Promise<void>(() => {});
      fallback = pollForExit(pid);
      return fallback.exited;
    },
  );
  return {
    exited,
    cancel: () => {
      cancelled = true;
      handle.close();
      fallback?.cancel();
    },
  };
}

/** Resolves when a process we did not spawn exits (see watchExit); the watch ends with it. */
export function waitForExit(pid: number): Promise<void> {
  return watchExit(pid).exited;
}

function pollForExit(pid: number): ExitWatch {
  let timer: NodeJS.Timeout | null = null;
  const exited = new Promise<void>((resolve) => {
    const check = () => {
      try {
        process.kill(pid, 0);
        timer = setTimeout(check, POLL_MS).unref();
      } catch {
        timer = null;
        resolve();
      }
    };
    check();
  });
  return {
    exited,
    cancel: () => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}
