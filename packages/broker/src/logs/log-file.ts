// One service@version's log file, shared by every daemon of that service in
// this process: JSON-line records appended in order, rotated by size
// (x.log → x.log.1 → …), and a failing disk survived — lines are dropped
// and counted, never queued without bound, and writing resumes by itself.
import { EventEmitter } from 'node:events';
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  write,
} from 'node:fs';
import { dirname } from 'node:path';
import { encodeRecord, type LogRecord } from './record.js';

/** Size-based rotation: at `maxBytes` the file moves to `.1`; `files` rotated ones are kept (0: truncate). */
export interface LogLimits {
  maxBytes: number;
  files: number;
}

/** Where a log file's trouble is reported (the broker's logger); one call per episode. */
export type LogNotice = (
  level: 'warn' | 'info',
  message: string,
  fields: Record<string, unknown>,
) => void;

/** What `status` shows of one log file. */
export interface LogFileStats {
  path: string;
  /** Lines dropped since this broker opened the file (writes failed). */
  dropped: number;
  /** The error of the write failure in progress (ENOSPC, …), or null when writing works. */
  failing: string | null;
}

/** Queued bytes at which captures stop reading their pipes until the queue drains (backpressure). */
const HIGH_WATER_BYTES = 256 * 1024;
/** The most one write(2) carries. */
const BATCH_BYTES = 64 * 1024;

/** A file's open instances in this process, by path (two brokers of one process share one). */
const files = new Map<string, LogFile>();

/**
 * The log file at `path`, opened on first write; `limits` are the latest
 * definition's. Pair every call with release().
 */
export function acquireLogFile(path: string, limits: LogLimits, notice: LogNotice): LogFile {
  let file = files.get(path);
  if (!file) {
    file = new LogFile(path);
    files.set(path, file);
  }
  file.use(limits, notice);
  return file;
}

/** Every log file this process has written under `dir`, for status. */
export function logFileStats(dir: string): LogFileStats[] {
  return [...files.values()]
    .filter((f) => f.path.startsWith(`${dir}/`))
    .map((f) => f.stats())
    .sort((a, b) => a.path.localeCompare(b.path));
}

/** Events: 'drain' (the queue fell below half the high-water mark). */
export class LogFile extends EventEmitter {
  readonly path: string;
  private limits: LogLimits = { maxBytes: 10 * 1024 * 1024, files: 3 };
  private notice: LogNotice = () => {};
  private fd: number | null = null;
  /** Bytes in the open file. */
  private size = 0;
  /** Encoded records waiting for a write, and their byte lengths (head index: no O(n) shift). */
  private queue: string[] = [];
  private lengths: number[] = [];
  private head = 0;
  private queuedBytes = 0;
  private writing = false;
  private congestedValue = false;
  private users = 0;
  private failing: { code: string; dropped: number } | null = null;
  private droppedTotal = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(path: string) {
    super();
    this.path = path;
    this.setMaxListeners(0);
  }

  use(limits: LogLimits, notice: LogNotice): void {
    this.users++;
    this.limits = limits;
    this.notice = notice;
  }

  /** One user fewer; the last one's release closes the fd once the queue is written. */
  release(): void {
    this.users = Math.max(0, this.users - 1);
    this.closeIfUnused();
  }

  /** True while captures should stop reading (resume on 'drain'). */
  get congested(): boolean {
    return this.congestedValue;
  }

  append(records: readonly LogRecord[]): void {
    for (const record of records) {
      const text = encodeRecord(record);
      const bytes = Buffer.byteLength(text);
      this.queue.push(text);
      this.lengths.push(bytes);
      this.queuedBytes += bytes;
    }
    if (this.queuedBytes >= HIGH_WATER_BYTES) this.congestedValue = true;
    this.pump();
  }

  /** Resolves once everything appended so far was written (or dropped). */
  idle(): Promise<void> {
    if (!this.writing && this.head === this.queue.length) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stats(): LogFileStats {
    return { path: this.path, dropped: this.droppedTotal, failing: this.failing?.code ?? null };
  }

  private pump(): void {
    while (!this.writing && this.head < this.queue.length) {
      if (this.open() === null) {
        // Cannot open: everything queued is dropped (the episode began in open()).
        this.dropQueued();
        continue;
      }
      const batch = this.takeBatch();
      // A rotation in takeBatch reopened the file, or failed to.
      const fd = this.fd;
      if (fd === null) {
        this.countDropped(batch.lines);
        continue;
      }
      const note = this.failing
        ? encodeRecord({
            t: Date.now(),
            pid: process.pid,
            stream: 'broker',
            line: `${this.failing.dropped} lines dropped: writes failed with ${this.failing.code}`,
            dropped: this.failing.dropped,
          })
        : '';
      const data = Buffer.from(note + batch.text);
      this.writing = true;
      this.writeAll(fd, data, 0, (error) => {
        this.writing = false;
        if (error) this.dropped(batch.lines, error);
        else {
          this.size += data.length;
          if (this.failing) {
            this.notice('info', 'daemon log writable again', {
              path: this.path,
              dropped: this.failing.dropped,
            });
            this.failing = null;
          }
        }
        this.afterWrite();
      });
    }
    if (!this.writing) this.afterWrite();
  }

  /** Records from the queue's head, within the batch size and the room left before rotation. */
  private takeBatch(): { text: string; lines: number } {
    let room = Math.min(BATCH_BYTES, this.limits.maxBytes - this.size);
    if (room < this.lengths[this.head]! && this.size > 0) {
      this.rotate();
      room = Math.min(BATCH_BYTES, this.limits.maxBytes);
    }
    const parts: string[] = [];
    let bytes = 0;
    // At least one record, even one longer than the file's limit.
    while (this.head < this.queue.length) {
      const length = this.lengths[this.head]!;
      if (parts.length > 0 && bytes + length > room) break;
      parts.push(this.queue[this.head]!);
      bytes += length;
      this.queuedBytes -= length;
      this.head++;
    }
    this.compact();
    return { text: parts.join(''), lines: parts.length };
  }

  private dropQueued(): void {
    const lines = this.queue.length - this.head;
    this.queue = [];
    this.lengths = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.countDropped(lines);
  }

  private countDropped(lines: number): void {
    if (this.failing) this.failing.dropped += lines;
    this.droppedTotal += lines;
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.lengths = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.lengths = this.lengths.slice(this.head);
      this.head = 0;
    }
  }

  private writeAll(
    fd: number,
    data: Buffer,
    offset: number,
    done: (error: NodeJS.ErrnoException | null) => void,
  ): void {
    write(fd, data, offset, data.length - offset, null, (error, written) => {
      if (error) done(error);
      else if (offset + written < data.length) this.writeAll(fd, data, offset + written, done);
      else done(null);
    });
  }

  /** The open fd, opening (and creating the directory) if needed; null when that fails. */
  private open(): number | null {
    if (this.fd !== null) return this.fd;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      const fd = openSync(this.path, 'a', 0o600);
      try {
        this.size = fstatSync(fd).size;
      } catch (error) {
        closeSync(fd);
        throw error;
      }
      this.fd = fd;
      return fd;
    } catch (error) {
      this.dropped(0, error as NodeJS.ErrnoException);
      return null;
    }
  }

  /** A write (or open) failed: count the lines, warn once per episode, reopen on the next try. */
  private dropped(lines: number, error: NodeJS.ErrnoException): void {
    this.closeFd();
    if (this.failing) {
      this.countDropped(lines);
      return;
    }
    this.droppedTotal += lines;
    const code = error.code ?? 'EIO';
    this.failing = { code, dropped: lines };
    this.notice('warn', 'cannot write daemon log; dropping lines until writes work again', {
      path: this.path,
      code,
      error: error.message,
    });
  }

  private rotate(): void {
    if (this.fd === null) return;
    try {
      if (this.limits.files === 0) {
        ftruncateSync(this.fd, 0);
        this.size = 0;
        return;
      }
      this.closeFd();
      for (let i = this.limits.files - 1; i >= 1; i--)
        renameIfPresent(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      renameIfPresent(this.path, `${this.path}.1`);
    } catch (error) {
      this.notice('warn', 'cannot rotate daemon log', {
        path: this.path,
        error: (error as Error).message,
      });
    }
    // Reopened (a new, empty file) by the next open(); the caller opened already.
    this.open();
  }

  private afterWrite(): void {
    if (this.writing) return;
    if (this.head < this.queue.length) {
      this.pump();
      return;
    }
    if (this.congestedValue && this.queuedBytes < HIGH_WATER_BYTES / 2) {
      this.congestedValue = false;
      this.emit('drain');
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
    this.closeIfUnused();
  }

  private closeIfUnused(): void {
    if (this.users === 0 && !this.writing && this.head === this.queue.length) this.closeFd();
  }

  private closeFd(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // Nothing to do about a failed close of a log file.
    }
    this.fd = null;
  }
}

function renameIfPresent(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
