// Stale daemons: for services with `restartOnChange`, the SHA-256 of the
// daemon's executable (its command, resolved on PATH) and of its
// `entryScript`, watched on disk; when the contents change (not merely the
// mtime) every running daemon of the service gets a rolling restart.
// Restarting is the registry's (registry.restart); this file only notices.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  accessSync,
  constants,
  createReadStream,
  type FSWatcher,
  realpathSync,
  watch,
} from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Backend } from '../backend.js';
import type { BackendRegistry } from '../backend-registry.js';
import type { ServiceDefinition } from '../config/definition.js';
import { spawnBudgetKey } from '../spawn-budget.js';
import type { RestartOutcome } from './rolling-restart.js';

type Log = (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;

export interface StaleWatchOptions {
  /** True when a daemon of that service@version key is running (and so can be rolled). */
  running(key: string): boolean;
  restart(definition: ServiceDefinition): Promise<RestartOutcome>;
  log: Log;
  /** Quiet time after the last change event before the file is hashed (default 300 ms). */
  debounceMs?: number;
}

interface WatchedFile {
  /** The contents' SHA-256 when last seen; null when unreadable. */
  hash: Promise<string | null>;
  timer: NodeJS.Timeout | null;
}

/**
 * Watches what `update` is given; close() stops every watcher and timer.
 * Event: 'checked' (file, changed: boolean) after each re-hash.
 */
export class StaleWatch extends EventEmitter {
  private readonly options: StaleWatchOptions;
  private definitions: ServiceDefinition[] = [];
  private readonly files = new Map<string, WatchedFile>();
  private readonly dirs = new Map<string, FSWatcher>();
  private closed = false;
  /** Hashes being read: close() cancels them and waits until their files are closed. */
  private readonly hashing = new Set<Promise<string | null>>();
  private readonly abort = new AbortController();

  constructor(options: StaleWatchOptions) {
    super();
    this.options = options;
  }

  /** The definitions in force (after each config load): watches start and stop to match. */
  update(definitions: readonly ServiceDefinition[]): void {
    if (this.closed) return;
    this.definitions = definitions.filter((d) => d.restartOnChange);
    const wanted = new Set(this.definitions.flatMap((d) => watchedFiles(d)));
    for (const [file, entry] of this.files) {
      if (wanted.has(file)) continue;
      if (entry.timer) clearTimeout(entry.timer);
      this.files.delete(file);
    }
    for (const file of wanted)
      if (!this.files.has(file)) this.files.set(file, { hash: this.hash(file), timer: null });
    const dirs = new Set([...wanted].map((f) => dirname(f)));
    for (const [dir, watcher] of this.dirs) {
      if (dirs.has(dir)) continue;
      watcher.close();
      this.dirs.delete(dir);
    }
    for (const dir of dirs) if (!this.dirs.has(dir)) this.watchDir(dir);
  }

  /** Stops watching; resolves once no file of ours is open. */
  close(): Promise<void> {
    this.closed = true;
    for (const watcher of this.dirs.values()) watcher.close();
    this.dirs.clear();
    for (const entry of this.files.values()) if (entry.timer) clearTimeout(entry.timer);
    this.files.clear();
    this.abort.abort();
    return Promise.all([...this.hashing]).then(() => {});
  }

  private hash(file: string): Promise<string | null> {
    const hashing = hashFile(file, this.abort.signal);
    this.hashing.add(hashing);
    void hashing.then(() => this.hashing.delete(hashing));
    return hashing;
  }

  // The directory, not the file: an editor or installer replaces a file by
  // renaming a new one over it, and a watch on the old inode would go deaf.
  private watchDir(dir: string): void {
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (name !== null) this.changed(join(dir, name.toString()));
      });
    } catch (error) {
      this.options.log('warn', { dir, err: error }, 'cannot watch for stale daemons');
      return;
    }
    watcher.on('error', (error) =>
      this.options.log('warn', { dir, err: error }, 'stale-daemon watch failed'),
    );
    this.dirs.set(dir, watcher);
  }

  private changed(file: string): void {
    const entry = this.files.get(file);
    if (!entry || this.closed) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      void this.rehash(file, entry);
    }, this.options.debounceMs ?? 300);
  }

  private async rehash(file: string, entry: WatchedFile): Promise<void> {
    const before = await entry.hash;
    const next = this.hash(file);
    entry.hash = next;
    const after = await next;
    const changed = after !== null && after !== before;
    this.emit('checked', file, changed);
    if (this.closed || !changed) return;
    for (const definition of this.definitions) {
      if (!watchedFiles(definition).includes(file)) continue;
      const key = spawnBudgetKey(definition.name, definition.version);
      if (!this.options.running(key)) continue;
      this.options.log('info', { service: key, file }, 'daemon is stale; rolling restart');
      this.options.restart(definition).then(
        (outcome) =>
          this.options.log(
            'info',
            { service: key, old_pid: outcome.oldPid, new_pid: outcome.newPid },
            'stale daemon replaced',
          ),
        (error: Error & { code?: string }) =>
          this.options.log(
            'warn',
            { service: key, code: error.code, file },
            `stale daemon not replaced (the old one keeps serving): ${error.message}`,
          ),
      );
    }
  }
}

/** What the broker watches for: its registry's running daemons, rolled and logged (also 'promoted'). */
export function staleWatchFor(
  registry: Pick<BackendRegistry, 'get' | 'restart' | 'on'>,
  log: Log,
): StaleWatch {
  registry.on('promoted', (backend: Backend, old: Backend | undefined) =>
    log(
      'info',
      { service: backend.key, daemon_pid: backend.pid, old_daemon_pid: old?.pid },
      'backend replaced',
    ),
  );
  return new StaleWatch({
    running: (key) => registry.get(key)?.state === 'ready',
    restart: (definition) => registry.restart(definition),
    log,
  });
}

/** The executable (resolved on PATH, symlinks followed) and the entry script of a definition. */
export function watchedFiles(definition: ServiceDefinition): string[] {
  const files: string[] = [];
  const exe = resolveCommand(definition);
  if (exe) files.push(exe);
  if (definition.entryScript) files.push(realOr(definition.entryScript));
  return files;
}

function resolveCommand(definition: ServiceDefinition): string | null {
  const { command } = definition;
  if (command.includes('/'))
    return realOr(isAbsolute(command) ? command : resolve(definition.cwd ?? '.', command));
  const path = definition.env.PATH ?? process.env.PATH ?? '';
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return realOr(candidate);
    } catch {
      // Not here.
    }
  }
  return null;
}

function realOr(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/** The SHA-256 of a file's contents (streamed: an executable can be large); null when unreadable. */
function hashFile(file: string, signal: AbortSignal): Promise<string | null> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let digest: string | null = null;
    const stream = createReadStream(file, { signal });
    stream.on('data', (chunk) => hash.update(chunk));
    stream.once('end', () => {
      digest = hash.digest('hex');
    });
    stream.once('error', () => {});
    // 'close' comes after 'end' or 'error', once the fd is closed.
    stream.once('close', () => resolve(digest));
  });
}
