// Signalling a daemon and waiting for it to exit, for the processes the
// broker spawned (a SpawnedProcess) and for those it only knows by pid (one
// rediscovered or handed over). Deciding when to stop one is the registry's.
import type { SpawnedProcess } from '@handoff/fdpass';

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

/** Resolves when a process we did not spawn exits (a pidfd is not available from Node). */
export function waitForExit(pid: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      try {
        process.kill(pid, 0);
        setTimeout(check, 250).unref();
      } catch {
        resolve();
      }
    };
    check();
  });
}
