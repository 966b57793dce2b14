// One daemon's stdout and stderr as the broker reads them: split into lines
// (long ones split at a cap and marked), stamped with time, pid and stream,
// appended to the service's log file, and the last few KiB kept in memory
// for a spawn failure's report. Memory stays bounded whatever the daemon
// writes: the pipes stop being read while the file's queue is full.
import { readSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { LogFile } from './log-file.js';
import { LINE_CAP_BYTES, type LogRecord } from './record.js';

/** The read ends of a daemon's stdout and stderr pipes; null for one already closed. */
export interface OutputFds {
  stdout: number | null;
  stderr: number | null;
}

/** A daemon's output streams, while the broker holds them. */
export interface DaemonOutput {
  /** The last ~4 KiB of its output (stderr and stdout, as lines), for a spawn failure's report. */
  tail(): string;
  /** Lets the broker's event loop end while the daemon still writes. */
  unref(): void;
  /** Stops reading, writes what was read (a partial last line too), closes the broker's ends. */
  close(): void;
  /**
   * Upgrade, old broker: stops reading both pipes (what was read is
   * written, a partial line as a `split` record) and returns the read
   * ends' fds — still open and still this object's: send them, then
   * close() once the successor took over, or resume() if it did not.
   */
  detach(): OutputFds;
  /** Reads again after detach() (an upgrade that failed). */
  resume(): void;
  /** Resolves once both pipes reached their end (the daemon and its children closed them), or after `ms`. */
  settled(ms: number): Promise<void>;
}

/** How much output tail() keeps. */
const TAIL_BYTES = 4096;
/** The most close() reads of what a daemon left in its pipe. */
const CLOSE_DRAIN_BYTES = 1024 * 1024;

/** libuv's stream handle behind a net.Socket: what stopping a read without losing data needs. */
interface StreamHandle {
  fd: number;
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

/**
 * Captures `streams` of daemon `pid` into `log` (null: tail only). Takes
 * ownership of the streams; `release` runs once both ended or close() ran.
 */
export function captureOutput(
  pid: number,
  streams: { stdout: Readable | null; stderr: Readable | null },
  log: LogFile | null,
): DaemonOutput {
  return new DaemonCapture(pid, streams, log);
}

/** Wraps received pipe fds (an upgrade's successor) in streams; the streams own the fds. */
export function streamsFromFds(fds: OutputFds): {
  stdout: Readable | null;
  stderr: Readable | null;
} {
  const open = (fd: number | null) =>
    fd === null ? null : new Socket({ fd, readable: true, writable: false });
  return { stdout: open(fds.stdout), stderr: open(fds.stderr) };
}

class DaemonCapture implements DaemonOutput {
  private readonly pid: number;
  private readonly log: LogFile | null;
  private readonly streams: StreamCapture[] = [];
  /** Recent lines from `tailHead` on (a head index, not shift(): a flood of short lines stays cheap). */
  private tailLines: string[] = [];
  private tailHead = 0;
  private tailBytes = 0;
  private released = false;
  private readonly endWaiters: (() => void)[] = [];

  constructor(
    pid: number,
    streams: { stdout: Readable | null; stderr: Readable | null },
    log: LogFile | null,
  ) {
    this.pid = pid;
    this.log = log;
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = streams[name];
      if (stream) this.streams.push(new StreamCapture(this, name, stream, log));
    }
    if (this.streams.length === 0) this.streamEnded();
  }

  get daemonPid(): number {
    return this.pid;
  }

  /** Lines for the file and the tail. */
  emit(records: LogRecord[]): void {
    for (const r of records) this.remember(r.line);
    this.log?.append(records);
  }

  private remember(line: string): void {
    this.tailLines.push(line);
    this.tailBytes += line.length + 1;
    while (this.tailBytes > TAIL_BYTES && this.tailLines.length - this.tailHead > 1)
      this.tailBytes -= this.tailLines[this.tailHead++]!.length + 1;
    if (this.tailHead > 1024) {
      this.tailLines = this.tailLines.slice(this.tailHead);
      this.tailHead = 0;
    }
  }

  tail(): string {
    const text = this.tailLines.slice(this.tailHead).join('\n');
    return text.length > TAIL_BYTES ? text.slice(text.length - TAIL_BYTES) : text;
  }

  unref(): void {
    for (const s of this.streams) s.unref();
  }

  close(): void {
    for (const s of this.streams) s.close();
    this.release();
  }

  detach(): OutputFds {
    const fds: OutputFds = { stdout: null, stderr: null };
    for (const s of this.streams) fds[s.name] = s.detach();
    return fds;
  }

  resume(): void {
    for (const s of this.streams) s.resume();
  }

  settled(ms: number): Promise<void> {
    if (this.streams.every((s) => s.ended)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.endWaiters.push(done);
    });
  }

  /** A stream ended: once both did, the file is released. */
  streamEnded(): void {
    if (!this.streams.every((s) => s.ended)) return;
    for (const done of this.endWaiters.splice(0)) done();
    this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.log?.release();
  }
}

class StreamCapture {
  readonly name: 'stdout' | 'stderr';
  private readonly owner: DaemonCapture;
  private readonly stream: Readable;
  private readonly log: LogFile | null;
  /** Bytes after the last newline, at most LINE_CAP_BYTES. */
  private partial: Buffer = Buffer.alloc(0);
  ended = false;
  private detached = false;
  private waitingForDrain = false;
  private readonly onDrain = () => {
    this.waitingForDrain = false;
    if (!this.detached && !this.ended) this.startReading();
  };

  constructor(
    owner: DaemonCapture,
    name: 'stdout' | 'stderr',
    stream: Readable,
    log: LogFile | null,
  ) {
    this.owner = owner;
    this.name = name;
    this.stream = stream;
    this.log = log;
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    // A read error (EIO) ends the capture like an end of file.
    stream.on('error', () => this.finish());
    stream.on('end', () => this.finish());
    stream.on('close', () => this.finish());
  }

  private onData(chunk: Buffer): void {
    const records: LogRecord[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) break;
      const line = chunk.subarray(start, newline);
      this.lines(
        this.partial.length > 0 ? Buffer.concat([this.partial, line]) : line,
        records,
        false,
      );
      this.partial = Buffer.alloc(0);
      start = newline + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.partial = this.partial.length > 0 ? Buffer.concat([this.partial, rest]) : rest;
      // A line longer than the cap goes out in cap-sized pieces as it comes.
      while (this.partial.length >= LINE_CAP_BYTES) {
        const cut = utf8Boundary(this.partial, LINE_CAP_BYTES);
        records.push(this.record(this.partial.subarray(0, cut), { split: true }));
        this.partial = this.partial.subarray(cut);
      }
      // Not a view of the chunk: it would keep the whole chunk alive.
      this.partial = Buffer.from(this.partial);
    }
    if (records.length > 0) this.owner.emit(records);
    if (this.log?.congested && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.stream.pause();
      this.log.once('drain', this.onDrain);
    }
  }

  /** One complete line (without its newline), in cap-sized records if long. */
  private lines(line: Buffer, records: LogRecord[], noeol: boolean): void {
    let rest = line;
    while (rest.length > LINE_CAP_BYTES) {
      const cut = utf8Boundary(rest, LINE_CAP_BYTES);
      records.push(this.record(rest.subarray(0, cut), { split: true }));
      rest = rest.subarray(cut);
    }
    records.push(this.record(rest, noeol ? { noeol: true } : {}));
  }

  private record(bytes: Buffer, marks: { split?: true; noeol?: true }): LogRecord {
    return {
      t: Date.now(),
      pid: this.owner.daemonPid,
      stream: this.name,
      line: bytes.toString('utf8'),
      ...marks,
    };
  }

  /** The partial last line, written as a record of its own. */
  private flushPartial(marks: { split?: true; noeol?: true }): void {
    if (this.partial.length === 0) return;
    const records = [this.record(this.partial, marks)];
    this.partial = Buffer.alloc(0);
    this.owner.emit(records);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.flushPartial({ noeol: true });
    this.log?.off('drain', this.onDrain);
    this.owner.streamEnded();
  }

  unref(): void {
    (this.stream as Readable & { unref?: () => void }).unref?.();
  }

  close(): void {
    if (this.ended) return;
    this.drainNow();
    this.finish();
    this.stream.destroy();
  }

  /**
   * What the daemon wrote that was not read yet (its last words, when its
   * exit is handled before its pipe's last data): a defensive read before
   * destroying. Does not block (the fd is non-blocking); at most
   * CLOSE_DRAIN_BYTES; never after detach(), whose unread data is the
   * successor's.
   */
  private drainNow(): void {
    const handle = this.handle();
    if (this.detached || !handle) return;
    while (this.stream.readableLength > 0 && this.stream.read() !== null);
    const buffer = Buffer.alloc(64 * 1024);
    for (let total = 0; total < CLOSE_DRAIN_BYTES; ) {
      let n: number;
      try {
        n = readSync(handle.fd, buffer, 0, buffer.length, null);
      } catch {
        break; // EAGAIN: nothing more for now.
      }
      if (n === 0) break;
      this.onData(Buffer.from(buffer.subarray(0, n)));
      total += n;
    }
  }

  detach(): number | null {
    const handle = this.handle();
    if (this.ended || !handle) return null;
    this.detached = true;
    stopReading(handle);
    // What the stream buffered: read() hands it to our 'data' listener.
    // (read() may restart reading; no data can arrive before we stop it
    // again below, within this same tick.)
    while (this.stream.readableLength > 0 && this.stream.read() !== null);
    stopReading(handle);
    this.flushPartial({ split: true });
    return handle.fd;
  }

  resume(): void {
    if (!this.detached || this.ended) return;
    this.detached = false;
    if (!this.waitingForDrain) this.startReading();
  }

  /**
   * Flowing again, and the handle reading: after detach() the stream may
   * believe a read is pending (and not ask for one) while the handle is stopped.
   */
  private startReading(): void {
    this.stream.resume();
    const handle = this.handle();
    if (handle && !handle.reading) {
      handle.reading = true;
      handle.readStart();
    }
  }

  private handle(): StreamHandle | null {
    return (this.stream as unknown as { _handle?: StreamHandle | null })._handle ?? null;
  }
}

function stopReading(handle: StreamHandle): void {
  handle.reading = false;
  handle.readStop();
}

/** The largest cut ≤ `at` that does not split a UTF-8 sequence (falls back to `at`). */
function utf8Boundary(bytes: Buffer, at: number): number {
  let cut = at;
  // Continuation bytes are 10xxxxxx; back up to the start of the sequence.
  while (cut > at - 4 && cut > 0 && ((bytes[cut] ?? 0) & 0xc0) === 0x80) cut--;
  return cut > 0 ? cut : at;
}
