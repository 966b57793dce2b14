// Noticing a change in the `.servicedef` directory: one fs watch on it,
// debounced into a call to the broker's reload (which re-reads both our JSON
// definitions and the `.servicedef` files). A directory created later is
// not watched until the broker restarts; a change to our JSON ones is
// config/watch.ts's, and that reload reads the `.servicedef` files too.
import { type FSWatcher, watch } from 'node:fs';

/** Quiet time after the last change before reloading, as config/watch.ts waits. */
const DEBOUNCE_MS = 100;

export interface ServicedefWatch {
  close(): void;
}

/** Watches `dir` (when it exists) and calls `reload` after changes settle. */
export function watchServicedefs(dir: string, reload: () => void): ServicedefWatch {
  let timer: NodeJS.Timeout | null = null;
  let watcher: FSWatcher | null = null;
  const stop = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    watcher?.close();
    watcher = null;
  };
  try {
    watcher = watch(dir, (_event, name) => {
      if (name !== null && !String(name).endsWith('.servicedef')) return;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        reload();
      }, DEBOUNCE_MS);
    });
    // A directory removed under us: the next reload reports it missing; stop watching it.
    watcher.on('error', stop);
  } catch {
    // Missing (or unreadable, which the load reports): nothing to watch.
  }
  return { close: stop };
}
