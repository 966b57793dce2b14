// Watching service definitions: fs watches on the definition directory and
// on the explicit file's directory, debounced into full reloads through
// load.ts. What a definition holds is definition.ts; acting on a reload is
// the server's.
import { type FSWatcher, type Stats, statSync, watch } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { MAX_TIMER_MS, ServiceConfigError } from './definition.js';
import {
  isConfigFileName,
  loadServiceDefinitions,
  type ServiceConfigLoad,
  type ServiceConfigSources,
  unreadable,
} from './load.js';

export interface WatchServiceOptions {
  /** Quiet time after the last change before reloading; default 100 ms. */
  debounceMs?: number;
  /**
   * Hears every filesystem change the watcher notices, after it has acted on
   * it: `reload: false` means it looked and let it pass (a file it would not
   * load, a sibling of the explicit file). With settled() it shows that a
   * change was considered, where waiting for a reload that never comes would
   * prove nothing. Must not throw, like `onReload`.
   */
  onChange?: (change: ServiceConfigChange) => void;
}

/** One filesystem change as the watcher judged it. */
export interface ServiceConfigChange {
  /** The entry that changed, or the watched directory itself. */
  readonly path: string;
  /** Whether a reload is now due (debounced with any others). */
  readonly reload: boolean;
}

export interface ServiceConfigWatcher {
  /** Stops watching: releases every fs watcher and timer; no reload follows. */
  close(): void;
  /**
   * Resolves once no reload is due or running: at once when none is, else
   * when the pending reload (and any it queued) has called `onReload`, or
   * when close() cancelled it.
   */
  settled(): Promise<void>;
}

function sameDirectory(a: Stats | undefined, b: Stats): boolean {
  return a?.isDirectory() === true && a.dev === b.dev && a.ino === b.ino;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * A load treats a missing directory as holding no services; a reload calls
 * it a problem, so that a directory removed or swapped out under a running
 * broker keeps its last good definitions (reload-state.ts) instead of
 * dropping them all.
 */
function vanished(dir: string | undefined): ServiceConfigError[] {
  if (dir === undefined || statOrUndefined(dir)?.isDirectory() === true) return [];
  return [
    new ServiceConfigError(
      'UNREADABLE',
      dir,
      'does not exist (any more): the config directory is gone',
      {
        errno: 'ENOENT',
      },
    ),
  ];
}

/**
 * Watches one directory for entries `accept` cares about. Files are watched
 * through their directory, not directly, because an inotify watch follows an
 * inode: an editor that saves by rename would leave a direct watch on the
 * old, deleted file. When the directory does not exist (yet), the nearest
 * existing ancestor is watched for the next path component to appear.
 */
class DirectoryWatch {
  private readonly dir: string;
  private watcher: FSWatcher | undefined;
  /** What is watched: the directory itself, or an ancestor waiting for it. */
  private watched: { path: string; stats: Stats; isTarget: boolean; nextName: string } | undefined;
  private broken = false;

  /** `onChange` hears every event seen, with whether it calls for a reload. */
  constructor(
    dir: string,
    private readonly accept: (name: string) => boolean,
    private readonly onChange: (path: string, reload: boolean) => void,
  ) {
    this.dir = resolve(dir);
  }

  /**
   * Makes sure the right directory is watched (it may have appeared,
   * vanished or been replaced since). Returns an error when watching fails
   * for a reason other than the directory not existing.
   */
  ensure(): ServiceConfigError | undefined {
    const w = this.watched;
    if (
      !this.broken &&
      w?.isTarget === true &&
      this.watcher !== undefined &&
      sameDirectory(statOrUndefined(w.path), w.stats)
    ) {
      return undefined;
    }
    return this.arm();
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.watched = undefined;
  }

  private arm(): ServiceConfigError | undefined {
    // Bounded: each retry means the tree changed under us mid-arm.
    for (let attempt = 0; attempt < 8; attempt++) {
      this.close();
      this.broken = false;
      let path = this.dir;
      let nextName = '';
      let stats = statOrUndefined(path);
      while (stats === undefined || !stats.isDirectory()) {
        const parent = dirname(path);
        if (parent === path) return undefined;
        nextName = basename(path);
        path = parent;
        stats = statOrUndefined(path);
      }
      const isTarget = path === this.dir;
      try {
        const watcher = watch(path, (_event, name) => this.onEvent(name));
        watcher.on('error', () => {
          // e.g. the directory was removed; re-arm on the next reload.
          this.broken = true;
          this.onChange(path, true);
        });
        this.watcher = watcher;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        return unreadable(path, error, 'cannot be watched');
      }
      this.watched = { path, stats, isTarget, nextName };
      // The next component may have appeared between stat and watch, which
      // no event would report; look again once the watch is in place.
      if (!isTarget && statOrUndefined(join(path, nextName)) !== undefined) continue;
      return undefined;
    }
    return undefined;
  }

  private onEvent(name: string | null): void {
    const w = this.watched;
    if (w === undefined) return;
    const relevant = name === null || (w.isTarget ? this.accept(name) : name === w.nextName);
    // Self events (the watched directory deleted or moved) carry its own
    // name, which the filter may drop; catch them by identity instead.
    const reload = relevant || !sameDirectory(statOrUndefined(w.path), w.stats);
    this.onChange(name === null ? w.path : join(w.path, name), reload);
  }
}

/**
 * Watches the definition sources and calls `onReload` with a fresh full load
 * after changes settle. It does not load at start: start the watcher first,
 * then call loadServiceDefinitions, so no change can fall between the two.
 * `onReload` must not throw (an exception becomes an uncaught exception, as
 * from an event listener). Throws ServiceConfigError (UNREADABLE) when a
 * watch cannot be set up at all (e.g. inotify limits).
 */
export function watchServiceDefinitions(
  sources: ServiceConfigSources,
  onReload: (result: ServiceConfigLoad) => void,
  { debounceMs = 100, onChange }: WatchServiceOptions = {},
): ServiceConfigWatcher {
  if (!Number.isFinite(debounceMs) || debounceMs < 0 || debounceMs > MAX_TIMER_MS) {
    throw new RangeError(`debounceMs must be from 0 to ${MAX_TIMER_MS}, got ${debounceMs}`);
  }
  // A steady stream of writes must not postpone the reload forever.
  const maxWaitMs = Math.max(debounceMs * 10, 1000);
  let timer: NodeJS.Timeout | undefined;
  let firstEventAt: number | undefined;
  let loading = false;
  let changedWhileLoading = false;
  let closed = false;
  /** settled() callers, answered when neither a timer nor a load is left. */
  const waiting: (() => void)[] = [];
  const answerIfSettled = (): void => {
    if (timer !== undefined || loading) return;
    for (const resolve of waiting.splice(0)) resolve();
  };

  const schedule = (): void => {
    if (closed) return;
    const now = performance.now();
    firstEventAt ??= now;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(debounceMs, firstEventAt + maxWaitMs - now));
    timer = setTimeout(() => {
      reload().catch((error: unknown) => {
        process.nextTick(() => {
          throw error;
        });
      });
    }, wait);
  };

  const changed = (path: string, reload: boolean): void => {
    if (reload) schedule();
    onChange?.({ path, reload });
  };

  const watches: DirectoryWatch[] = [];
  const { dir, file } = sources;
  if (dir !== undefined) watches.push(new DirectoryWatch(dir, isConfigFileName, changed));
  if (file !== undefined) {
    const name = basename(file);
    watches.push(new DirectoryWatch(dirname(file), (n) => n === name, changed));
  }

  const reload = async (): Promise<void> => {
    timer = undefined;
    firstEventAt = undefined;
    if (closed) return;
    if (loading) {
      changedWhileLoading = true;
      return;
    }
    loading = true;
    try {
      let result: ServiceConfigLoad;
      try {
        // Re-arm before loading: anything that changes after this point
        // raises an event, and anything before it is in the load.
        const watchErrors = watches.map((w) => w.ensure()).filter((e) => e !== undefined);
        const loaded = await loadServiceDefinitions(sources);
        result = {
          services: loaded.services,
          errors: [...watchErrors, ...vanished(sources.dir), ...loaded.errors],
        };
      } finally {
        loading = false;
      }
      if (closed) return;
      if (changedWhileLoading) {
        changedWhileLoading = false;
        schedule();
      }
      onReload(result);
    } finally {
      answerIfSettled();
    }
  };

  for (const w of watches) {
    const error = w.ensure();
    if (error !== undefined) {
      for (const other of watches) other.close();
      throw error;
    }
  }

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      for (const w of watches) w.close();
      answerIfSettled();
    },
    settled() {
      if (timer === undefined && !loading) return Promise.resolve();
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}
