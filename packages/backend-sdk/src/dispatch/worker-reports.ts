// A worker's reports to its master (ADOPTED, DROPPED, CLOSED, FAILED), one
// message per event-loop iteration, and the gate that holds received
// connections until the master can know they are ours: only then are they
// handed out to be served. Serving them is worker.ts.
import { closeFds, type FdSocket } from '@handoff/fdpass';
import { type DispatchLogger, errorCode } from './log.js';
import { DropReason, encodeReport, type ReportEntry, ReportKind } from './wire.js';

/** One DISPATCH as received: its records and the fds that came with it. */
export interface ReceivedBatch {
  data: Uint8Array;
  fds: number[];
}

export interface ReporterHooks {
  /** The master can know these are ours now: serve them. */
  adopt(batches: ReceivedBatch[]): void;
  /** Received connections were handed out or let go: the worker may be drained. */
  maybeDrained(): void;
}

/** How long a completion may wait for an adoption report to ride on. */
const COMPLETION_FLUSH_MS = 2;

export class WorkerReporter {
  readonly #channel: FdSocket;
  readonly #log: DispatchLogger;
  readonly #hooks: ReporterHooks;
  /** FIFO-relevant report entries (ADOPTED / DROPPED), merged while consecutive. */
  #entries: ReportEntry[] = [];
  #closed = 0;
  #failed = 0;
  /** Batches reported ADOPTED whose report has not reached the kernel yet. */
  #unsent: ReceivedBatch[] = [];
  /** Batches whose ADOPTED report is queued in the channel: adopted on 'drain'. */
  #waitingDrain: ReceivedBatch[] = [];
  #flushScheduled = false;
  #completionTimer: NodeJS.Timeout | null = null;

  constructor(channel: FdSocket, log: DispatchLogger, hooks: ReporterHooks) {
    this.#channel = channel;
    this.#log = log;
    this.#hooks = hooks;
  }

  /** Received connections not yet handed out: reported, or waiting for the report to leave. */
  get holding(): boolean {
    return this.#unsent.length > 0 || this.#waitingDrain.length > 0;
  }

  /** A dispatch arrived: it is reported ADOPTED, and served once that report left. */
  received(batch: ReceivedBatch): void {
    this.#unsent.push(batch);
    this.entry(ReportKind.ADOPTED, DropReason.NONE);
  }

  entry(kind: ReportKind, reason: DropReason): void {
    const last = this.#entries.at(-1);
    if (last !== undefined && last.kind === kind && last.reason === reason) last.count++;
    else this.#entries.push({ kind, reason, count: 1 });
    this.#scheduleFlush();
  }

  /** An adopted connection closed; `urgent` while stopping, when the master waits for it. */
  closed(urgent: boolean): void {
    this.#closed++;
    if (urgent) this.#scheduleFlush();
    else this.#scheduleCompletionFlush();
  }

  /** A received connection could not be served (it was closed). */
  failed(): void {
    this.#failed++;
    this.#scheduleCompletionFlush();
  }

  /**
   * The channel closed: nothing more can be reported; what was unsent dies
   * with it, and the master (if alive) takes those connections back.
   */
  dropAll(): void {
    const orphans = [...this.#unsent, ...this.#waitingDrain];
    this.#unsent = [];
    this.#waitingDrain = [];
    for (const b of orphans) closeFds(b.fds);
  }

  /**
   * One report per event-loop iteration, in its check phase: everything
   * received and closed during the poll phase travels in one message. That
   * is early enough for adoption too — the sockets are created only after
   * the report reached the kernel, and libuv polls a new socket no sooner
   * than the next iteration's poll phase, so no byte of a connection is
   * read before the master can know it is ours.
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#scheduledFlush);
  }

  readonly #scheduledFlush = (): void => {
    this.#flushScheduled = false;
    this.flush();
  };

  /**
   * Completions alone are not urgent: they ride on the next adoption
   * report, or leave within COMPLETION_FLUSH_MS. Sent one loop iteration at
   * a time they cost a message — and a wakeup of the master — for nearly
   * every connection; a few milliseconds of staleness in the master's load
   * figures costs nothing.
   */
  #scheduleCompletionFlush(): void {
    if (this.#flushScheduled || this.#completionTimer !== null) return;
    this.#completionTimer = setTimeout(this.#completionFlush, COMPLETION_FLUSH_MS);
    this.#completionTimer.unref();
  }

  readonly #completionFlush = (): void => {
    this.#completionTimer = null;
    this.flush();
  };

  flush(): void {
    if (this.#completionTimer !== null) {
      clearTimeout(this.#completionTimer);
      this.#completionTimer = null;
    }
    const entries = this.#entries;
    if (this.#closed > 0) {
      entries.push({ kind: ReportKind.CLOSED, reason: DropReason.NONE, count: this.#closed });
    }
    if (this.#failed > 0) {
      entries.push({
        kind: ReportKind.FAILED,
        reason: DropReason.ADOPT_FAILED,
        count: this.#failed,
      });
    }
    if (entries.length === 0) return;
    this.#entries = [];
    this.#closed = 0;
    this.#failed = 0;
    const batches = this.#unsent;
    this.#unsent = [];
    const channel = this.#channel;
    if (channel.closed) {
      for (const b of batches) closeFds(b.fds);
      return;
    }
    try {
      channel.write(encodeReport(entries));
    } catch (err) {
      // The master can no longer learn that we own these; it would send
      // them again elsewhere, so we must not serve them.
      for (const b of batches) closeFds(b.fds);
      this.#log('error', `report to the master failed (${errorCode(err)}); stopping`);
      channel.close();
      return;
    }
    if (channel.closed) {
      for (const b of batches) closeFds(b.fds);
      return;
    }
    if (channel.writableLength > 0 || this.#waitingDrain.length > 0) {
      // Queued behind the kernel's buffer: serve only once the master can
      // read that we own them (a crash before then must leave them its own).
      for (const b of batches) this.#waitingDrain.push(b);
      return;
    }
    this.#hooks.adopt(batches);
    this.#hooks.maybeDrained();
  }

  /** The channel took our queued report: what waited on it can be served. */
  onDrain(): void {
    if (this.#waitingDrain.length === 0) return;
    const batches = this.#waitingDrain;
    this.#waitingDrain = [];
    this.#hooks.adopt(batches);
    this.#hooks.maybeDrained();
  }
}
