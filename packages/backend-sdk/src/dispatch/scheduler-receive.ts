// What arrives from a worker's channel, applied to the master's books: READY,
// and each entry of a REPORT (adopted, dropped, closed or failed), one method
// per kind; channel errors; and the protocol faults that close a channel.
// Placing and sending connections is scheduler.ts / scheduler-send.ts.
import { closeFds, type FdPassError, type ReceivedMessage } from '@handoff/fdpass';
import { DispatchError } from './errors.js';
import { errorCode } from './log.js';
import type { Conn, SchedulerHooks, WorkerLink } from './scheduler-link.js';
import {
  DropReason,
  decodeWorkerMessage,
  type ReportEntry,
  ReportKind,
  type WorkerMessage,
} from './wire.js';

export interface ReceiveHooks extends SchedulerHooks {
  /** A worker reported READY: its link is 'ready' (or 'retiring') now. */
  ready(link: WorkerLink): void;
  /** A report changed the books: place waiting connections, send, re-gauge. */
  changed(): void;
}

export class ReportReceiver {
  readonly #hooks: ReceiveHooks;

  constructor(hooks: ReceiveHooks) {
    this.#hooks = hooks;
  }

  onMessage(link: WorkerLink, { data, fds }: ReceivedMessage): void {
    if (link.state === 'lost') {
      if (fds.length > 0) closeFds(fds);
      return;
    }
    let msg: WorkerMessage;
    try {
      msg = decodeWorkerMessage(data, fds.length);
    } catch (err) {
      if (fds.length > 0) closeFds(fds);
      this.#protocolFault(link, `sent a message that does not decode (${errorCode(err)})`, err);
      return;
    }
    if (msg.type === 'ready') this.#onReady(link, msg.pid);
    else this.#onReport(link, msg.entries);
  }

  /** Message-level faults a worker caused break the protocol; anything else is the channel failing. */
  onChannelError(link: WorkerLink, err: FdPassError): void {
    if (link.state === 'lost') return;
    const code = errorCode(err);
    if (
      code === 'ERR_TOO_MANY_FDS' ||
      code === 'ERR_DATA_TRUNCATED' ||
      code === 'ERR_CONTROL_TRUNCATED'
    ) {
      // A worker never sends fds or large messages.
      this.#protocolFault(link, `sent a message the channel rejected (${code})`, err);
      return;
    }
    link.lostError = err;
    // A worker asked to stop may well be killed at its deadline: not news.
    this.#hooks.log(
      link.stopRequested ? 'info' : 'error',
      `channel to ${link.label} failed: ${code}`,
      {
        slot: link.slot,
        pid: link.pid,
        errno: code,
      },
    );
  }

  #onReady(link: WorkerLink, pid: number): void {
    if (link.state !== 'starting') {
      this.#protocolFault(link, 'reported ready twice', null);
      return;
    }
    link.reportedPid = pid;
    link.state = link.stopRequested ? 'retiring' : 'ready';
    this.#hooks.ready(link);
  }

  #onReport(link: WorkerLink, entries: readonly ReportEntry[]): void {
    const now = performance.now();
    const adoptedFds: number[] = [];
    let ok = false;
    try {
      ok = this.#applyReport(link, entries, now, adoptedFds);
    } finally {
      // The worker owns adopted connections now: drop the master's copies,
      // in one call — also when a later entry of the same report was a
      // protocol fault, or they would leak.
      if (adoptedFds.length > 0) {
        try {
          closeFds(adoptedFds);
        } catch (err) {
          this.#hooks.log(
            'error',
            `closing ${adoptedFds.length} adopted fd(s) failed: ${errorCode(err)}`,
          );
        }
      }
    }
    if (ok) this.#hooks.changed();
  }

  /**
   * Applies a report's entries; false at the first that breaks the
   * protocol (reported as a fault: the channel is gone).
   */
  #applyReport(
    link: WorkerLink,
    entries: readonly ReportEntry[],
    now: number,
    adopted: number[],
  ): boolean {
    for (const e of entries) {
      if (!this.#applyEntry(link, e, now, adopted)) return false;
    }
    return true;
  }

  #applyEntry(link: WorkerLink, e: ReportEntry, now: number, adopted: number[]): boolean {
    switch (e.kind) {
      case ReportKind.ADOPTED:
        return this.#onAdopted(link, e.count, now, adopted);
      case ReportKind.DROPPED:
        return this.#onDropped(link, e);
      case ReportKind.CLOSED:
      case ReportKind.FAILED:
        return this.#onClosed(link, e);
    }
  }

  /** The `count` oldest dispatches in flight are the worker's now; their fds go to `adopted`. */
  #onAdopted(link: WorkerLink, count: number, now: number, adopted: number[]): boolean {
    const counters = this.#hooks.counters;
    if (count > link.inFlight.length) {
      this.#protocolFault(
        link,
        `reported ${count} adoptions, ${link.inFlight.length} in flight`,
        null,
      );
      return false;
    }
    for (let b = 0; b < count; b++) {
      const batch = link.inFlight.shift() as Conn[];
      link.queued -= batch.length;
      for (const c of batch) {
        adopted.push(c.fd);
        counters.adoptSumMs += now - c.acceptedAt;
      }
      counters.adoptCount += batch.length;
      counters.dispatched += batch.length;
    }
    return true;
  }

  /** The oldest dispatches in flight never reached the worker whole: they go to another. */
  #onDropped(link: WorkerLink, e: ReportEntry): boolean {
    if (e.count > link.inFlight.length) {
      this.#protocolFault(
        link,
        `reported ${e.count} drops, ${link.inFlight.length} in flight`,
        null,
      );
      return false;
    }
    const back: Conn[] = [];
    for (let b = 0; b < e.count; b++) {
      const batch = link.inFlight.shift() as Conn[];
      for (const c of batch) {
        c.attempts++;
        back.push(c);
      }
    }
    link.queued -= back.length;
    link.open -= back.length;
    link.dispatched -= back.length;
    this.#hooks.counters.errors.dropped += back.length;
    link.refusing = true;
    this.#hooks.scheduleRetry();
    const why = dropReasonName(e.reason);
    this.#hooks.log(
      'warn',
      `${link.label} could not receive ${back.length} connection(s) (${why}); retrying on another worker`,
      { slot: link.slot, pid: link.pid, reason: why, connections: back.length },
    );
    this.#hooks.takeBack(back, `${link.label} could not receive it (${why})`);
    return true;
  }

  /** CLOSED: adopted connections that finished; FAILED: ones the worker could not serve. */
  #onClosed(link: WorkerLink, e: ReportEntry): boolean {
    const counters = this.#hooks.counters;
    if (e.count > link.open - link.queued) {
      this.#protocolFault(
        link,
        `reported ${e.count} closed, ${link.open - link.queued} open`,
        null,
      );
      return false;
    }
    link.open -= e.count;
    if (e.kind === ReportKind.CLOSED) counters.completed += e.count;
    else counters.errors.adopt += e.count;
    return true;
  }

  #protocolFault(link: WorkerLink, what: string, err: unknown): void {
    this.#hooks.counters.errors.protocol++;
    link.lostError = err instanceof Error ? err : new DispatchError('PROTOCOL', what);
    this.#hooks.log('error', `${link.label} ${what}; closing its channel`, {
      slot: link.slot,
      pid: link.pid,
    });
    link.channel.close();
  }
}

function dropReasonName(reason: number): string {
  switch (reason) {
    case DropReason.CONTROL_TRUNCATED:
      return 'ERR_CONTROL_TRUNCATED: its fd table is full (EMFILE)';
    case DropReason.TOO_MANY_FDS:
      return 'ERR_TOO_MANY_FDS';
    case DropReason.DATA_TRUNCATED:
      return 'ERR_DATA_TRUNCATED';
    case DropReason.MALFORMED:
      return 'malformed dispatch';
    default:
      return `reason ${reason}`;
  }
}
