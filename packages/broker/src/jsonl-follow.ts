// Following a JSON-lines file that another process appends to and rotates
// (`x` renamed to `x.1`, a new `x` begun): the broker's event journal and
// each daemon's log files. One reader for both, so both agree on what a
// line is (whole lines only: a line cut by a write in progress waits for its
// newline), on truncation (start over) and on rotation (the rest of the old
// file first, then the new one from its start). Whoever stops following
// closes every fd: `followUntilAborted` resolves only after its last check.
import { type FSWatcher, watch } from 'node:fs';
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';

/** Where a read stopped: the file (inode) and how far into it. */
export interface FilePosition {
  ino: number;
  size: number;
}

const CHUNK = 64 * 1024;

/** One followed path: its open handle, how far it was read, a partial last line. */
export class FollowedFile {
  private handle: FileHandle | null = null;
  private partial = Buffer.alloc(0);
  /** The inode of the open file (-1 before one is open). */
  ino = -1;
  offset = 0;

  constructor(
    readonly path: string,
    private readonly onLine: (line: string) => void,
  ) {}

  get isOpen(): boolean {
    return this.handle !== null;
  }

  /**
   * Opens the path afresh. Reading starts at its start, at its end, or at
   * `from.size` when it is still the file `from` was taken of (its start
   * otherwise). False when there is no file (yet).
   */
  async open(from: 'start' | 'end' | FilePosition): Promise<boolean> {
    await this.close();
    try {
      const handle = await open(this.path, 'r');
      const info = await handle.stat();
      this.handle = handle;
      this.ino = info.ino;
      if (from === 'end') this.offset = info.size;
      else if (from !== 'start' && from.ino === info.ino) this.offset = from.size;
      return true;
    } catch {
      return false;
    }
  }

  /** Reads what was appended since the last read; a truncated file is read from its start. */
  async readNew(): Promise<void> {
    const handle = this.handle;
    if (handle === null) return;
    const { size } = await handle.stat();
    if (size < this.offset) {
      this.offset = 0;
      this.partial = Buffer.alloc(0);
    }
    while (this.offset < size) {
      const chunk = Buffer.alloc(Math.min(CHUNK, size - this.offset));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, this.offset);
      if (bytesRead === 0) break;
      this.offset += bytesRead;
      this.take(chunk.subarray(0, bytesRead));
    }
  }

  /**
   * One look: what was appended; on rotation, the rest of the old file,
   * then `between()` (rotated files newer than it, if the caller keeps
   * several), then the new file from its start.
   */
  async poll(between?: () => Promise<void>): Promise<void> {
    if (this.handle === null && !(await this.open('start'))) return;
    await this.readNew();
    const now = await stat(this.path).catch(() => null);
    if (now && now.ino !== this.ino) {
      // The writer appends nothing to a file it renamed away, so reading it
      // once more now gets all of it.
      await this.readNew();
      await between?.();
      await this.open('start');
      await this.readNew();
    }
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    this.partial = Buffer.alloc(0);
    this.offset = 0;
    await handle?.close();
  }

  // Splits on newline bytes, so a character cut by a chunk is not decoded in halves.
  private take(data: Buffer): void {
    const all = this.partial.length === 0 ? data : Buffer.concat([this.partial, data]);
    const last = all.lastIndexOf(10);
    this.partial = Buffer.from(all.subarray(last + 1));
    if (last === -1) return;
    for (const line of all.subarray(0, last).toString('utf8').split('\n')) this.onLine(line);
  }
}

/** The lines `path` got after `at.size`, if it is still the file (inode) `at` was taken of. */
export async function readRestOf(
  path: string,
  at: FilePosition,
  onLine: (line: string) => void,
): Promise<void> {
  const file = new FollowedFile(path, onLine);
  try {
    if ((await file.open(at)) && file.ino === at.ino) await file.readNew();
  } finally {
    await file.close();
  }
}

/** Every whole line of `path` (a rotated file, complete); nothing when it is gone. */
export async function readAllLines(path: string, onLine: (line: string) => void): Promise<void> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch {
    return; // Rotated out meanwhile: nothing more can be had of it.
  }
  const end = data.lastIndexOf(10);
  if (end === -1) return;
  for (const line of data.subarray(0, end).toString('utf8').split('\n')) onLine(line);
}

/**
 * Runs `check` every `pollMs` (and whenever `watchDir` changes, when given)
 * until `signal` aborts: one check at a time, a trigger during one runs
 * another after it. Resolves once the last check has finished, so the
 * caller can close what the checks read.
 */
export async function followUntilAborted(
  signal: AbortSignal,
  pollMs: number,
  check: () => Promise<void>,
  watchDir?: string,
): Promise<void> {
  let running: Promise<void> | null = null;
  let again = false;
  const trigger = () => {
    if (signal.aborted) return;
    if (running) {
      again = true;
      return;
    }
    running = check()
      .catch(() => {})
      .finally(() => {
        running = null;
        if (again) {
          again = false;
          trigger();
        }
      });
  };
  let watcher: FSWatcher | null = null;
  if (watchDir !== undefined) {
    try {
      watcher = watch(watchDir, () => trigger());
      watcher.on('error', () => {});
    } catch {
      // No directory yet (or no inotify): the poll still sees changes.
    }
  }
  const timer = setInterval(trigger, pollMs);
  try {
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    clearInterval(timer);
    watcher?.close();
    while (running) await running;
  }
}
