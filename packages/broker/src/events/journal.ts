// The broker's lifecycle event journal: events appended as JSON lines to
// `<stateDir>/events.jsonl`, rotated by size (bounded on disk), and the last
// few kept in memory for DUMP, DIAGNOSE and crash reports. record() never
// throws and never waits: writes are queued (bounded) and a failing disk
// drops events, counts them, and recovers by itself (like logs/log-file.ts).
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  renameSync,
  truncateSync,
  write,
} from 'node:fs';
import { dirname } from 'node:path';
import { encodeEvent, eventsFilePath, type JournalEvent } from './event.js';

export interface EventJournalOptions {
  /** Where events.jsonl lives; absent or null: events are kept in memory only. */
  stateDir?: string | null | undefined;
  /** Size at which the file is rotated (default 1 MiB). */
  maxBytes?: number;
  /** Files kept, the current one included (default 2: events.jsonl and events.jsonl.1). */
  files?: number;
  /** Events kept in memory (default 256). */
  ringSize?: number;
  /** Hears of write trouble and recovery, once per episode (the broker's logger). */
  onTrouble?: (level: 'warn' | 'info', message: string, fields: Record<string, unknown>) => void;
}

export const DEFAULT_JOURNAL_MAX_BYTES = 1024 * 1024;
export const DEFAULT_JOURNAL_FILES = 2;
export const DEFAULT_JOURNAL_RING = 256;
/** Queued bytes beyond which new events are dropped rather than queued. */
const MAX_QUEUED_BYTES = 256 * 1024;
/** After a failed open, how long before the next event tries again. */
const REOPEN_AFTER_MS = 1000;

/** What `status`/DUMP shows of the journal. */
export interface JournalStats {
  path: string | null;
  /** Events not written (disk trouble, or a full queue) since this journal opened. */
  dropped: number;
  /** The error of the write failure in progress, or null. */
  failing: string | null;
}

export type EventInput = Omit<JournalEvent, 't'> & { t?: number };

export class EventJournal {
  readonly path: string | null;
  /** Size at which the file is rotated. */
  readonly maxBytes: number;
  /** Files kept, the current one included. */
  readonly files: number;
  private readonly ringSize: number;
  private readonly onTrouble: NonNullable<EventJournalOptions['onTrouble']>;
  private readonly ring: JournalEvent[] = [];
  private ringHead = 0;
  private queue: string[] = [];
  private queuedBytes = 0;
  private fd: number | null = null;
  private size = 0;
  private writing = false;
  private closed = false;
  private failing: string | null = null;
  private retryAt = 0;
  private droppedTotal = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(options: EventJournalOptions = {}) {
    this.path = options.stateDir ? eventsFilePath(options.stateDir) : null;
    this.maxBytes = Math.max(1, options.maxBytes ?? DEFAULT_JOURNAL_MAX_BYTES);
    this.files = Math.max(1, options.files ?? DEFAULT_JOURNAL_FILES);
    this.ringSize = Math.max(1, options.ringSize ?? DEFAULT_JOURNAL_RING);
    this.onTrouble = options.onTrouble ?? (() => {});
  }

  /** Records one event (stamped now unless `t` is given). Never throws. */
  record(input: EventInput): void {
    try {
      const { t, ...rest } = input;
      const event: JournalEvent = { t: t ?? Date.now(), ...rest };
      if (this.ring.length < this.ringSize) this.ring.push(event);
      else {
        this.ring[this.ringHead] = event;
        this.ringHead = (this.ringHead + 1) % this.ringSize;
      }
      if (this.path === null || this.closed) return;
      const line = encodeEvent(event);
      if (this.queuedBytes + line.length > MAX_QUEUED_BYTES) {
        this.droppedTotal++;
        return;
      }
      this.queue.push(line);
      this.queuedBytes += line.length;
      this.pump();
    } catch {
      // The journal is a witness, never a cause: nothing it does may fail the broker.
      this.droppedTotal++;
    }
  }

  /** The last `count` events in memory (of `service` only, when given), oldest first. */
  recent(count = this.ringSize, service?: string): JournalEvent[] {
    const ordered = [...this.ring.slice(this.ringHead), ...this.ring.slice(0, this.ringHead)];
    const chosen = service === undefined ? ordered : ordered.filter((e) => e.service === service);
    return count <= 0 ? [] : chosen.slice(-count);
  }

  stats(): JournalStats {
    return { path: this.path, dropped: this.droppedTotal, failing: this.failing };
  }

  /** Resolves once everything recorded so far was written (or dropped). */
  idle(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Writes what is queued, then closes the file (at once when nothing is); later events stay in memory only. */
  close(): Promise<void> {
    if (this.writing || this.queue.length > 0) return this.idle().then(() => this.close());
    this.closed = true;
    if (this.fd !== null) closeQuietly(this.fd);
    this.fd = null;
    return Promise.resolve();
  }

  private pump(): void {
    if (this.writing || this.queue.length === 0) {
      this.settleIdle();
      return;
    }
    const fd = this.open();
    if (fd === null) {
      this.dropQueued();
      this.settleIdle();
      return;
    }
    // At most what fits before the rotation point (one line at least, into a fresh file).
    if (this.size > 0 && this.size + Buffer.byteLength(this.queue[0]!) > this.maxBytes) {
      if (!this.rotate()) {
        this.dropped(this.queue.length, 'rotation failed');
        this.dropQueuedSilently();
        this.settleIdle();
        return;
      }
    }
    const room = this.maxBytes - this.size;
    let bytes = 0;
    let lines = 0;
    while (lines < this.queue.length) {
      const length = Buffer.byteLength(this.queue[lines]!);
      if (lines > 0 && bytes + length > room) break;
      bytes += length;
      lines++;
    }
    const taken = this.queue.splice(0, lines);
    this.queuedBytes -= taken.reduce((n, l) => n + l.length, 0);
    const data = Buffer.from(taken.join(''));
    this.writing = true;
    writeAll(this.fd ?? fd, data, (error) => {
      this.writing = false;
      if (error) this.dropped(lines, (error as NodeJS.ErrnoException).code ?? error.message);
      else {
        this.size += data.length;
        if (this.failing !== null) {
          this.onTrouble('info', 'event journal writable again', { path: this.path });
          this.failing = null;
        }
      }
      this.pump();
    });
  }

  private open(): number | null {
    if (this.fd !== null) return this.fd;
    if (Date.now() < this.retryAt) return null;
    const path = this.path!;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      this.fd = openSync(path, 'a', 0o600);
      this.size = fstatSync(this.fd).size;
      return this.fd;
    } catch (error) {
      this.retryAt = Date.now() + REOPEN_AFTER_MS;
      this.trouble((error as NodeJS.ErrnoException).code ?? (error as Error).message);
      return null;
    }
  }

  /** events.jsonl → .1 → .2 …, keeping `files` in all; false if the file could not be reopened. */
  private rotate(): boolean {
    const path = this.path!;
    if (this.fd !== null) closeQuietly(this.fd);
    this.fd = null;
    try {
      if (this.files <= 1) truncateSync(path, 0);
      else {
        for (let i = this.files - 1; i >= 1; i--) {
          const from = i === 1 ? path : `${path}.${i - 1}`;
          try {
            renameSync(from, `${path}.${i}`);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
          }
        }
      }
    } catch (error) {
      this.trouble((error as NodeJS.ErrnoException).code ?? (error as Error).message);
    }
    return this.open() !== null;
  }

  private dropQueuedSilently(): void {
    this.queue = [];
    this.queuedBytes = 0;
  }

  private dropQueued(): void {
    this.droppedTotal += this.queue.length;
    this.queue = [];
    this.queuedBytes = 0;
  }

  private dropped(lines: number, why: string): void {
    this.droppedTotal += lines;
    this.trouble(why);
  }

  private trouble(code: string): void {
    if (this.failing === null)
      this.onTrouble('warn', 'event journal write failed; events are dropped until it recovers', {
        path: this.path,
        code,
      });
    this.failing = code;
  }

  private settleIdle(): void {
    if (this.writing || this.queue.length > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function writeAll(fd: number, data: Buffer, done: (error: Error | null) => void): void {
  write(fd, data, 0, data.length, null, (error, written) => {
    if (error) return done(error);
    if (written < data.length) return writeAll(fd, data.subarray(written), done);
    done(null);
  });
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed: nothing to release.
  }
}
