// Turns a worker's pending connections into DISPATCH messages — up to 253
// fds per sendmsg, from buffers made once — and handles a message the
// kernel refused. Which worker gets a connection is scheduler.ts; STOP and
// the channel's lifecycle are too.
import { fstatSync } from 'node:fs';
import { DispatchError } from './errors.js';
import { errorCode } from './log.js';
import type { Conn, SchedulerHooks, WorkerLink } from './scheduler-link.js';
import {
  dispatchMessageLength,
  MAX_FDS_PER_DISPATCH,
  putDispatchHeader,
  putDispatchRecord,
} from './wire.js';

export class DispatchSender {
  readonly #hooks: SchedulerHooks;
  readonly #message = new Uint8Array(dispatchMessageLength(MAX_FDS_PER_DISPATCH));
  readonly #fds = new Int32Array(MAX_FDS_PER_DISPATCH);
  /** Exact-length views of #message / #fds by count, made once: no allocation per send. */
  readonly #views: ({ data: Uint8Array; fds: Int32Array } | undefined)[] = [];

  constructor(hooks: SchedulerHooks) {
    this.#hooks = hooks;
  }

  /**
   * Sends a link's pending connections until none is left or its channel is
   * blocked or gone. False when the kernel refused a message: those
   * connections (and the rest of its pending) were taken back.
   */
  sendPending(link: WorkerLink): boolean {
    const channel = link.channel;
    const message = this.#message;
    while (link.pending.length > 0 && !link.blocked && link.state !== 'lost' && !channel.closed) {
      const count = Math.min(link.pending.length, MAX_FDS_PER_DISPATCH);
      const conns = link.pending.length === count ? link.pending : link.pending.slice(0, count);
      link.pending = link.pending.length === count ? [] : link.pending.slice(count);
      putDispatchHeader(message, count);
      for (let i = 0; i < count; i++) {
        const c = conns[i] as Conn;
        putDispatchRecord(message, i, c.id, c.listener);
        this.#fds[i] = c.fd;
      }
      const { data, fds } = this.#view(count);
      let sent: boolean;
      try {
        // Not a transfer: our copies stay open until the worker reports it
        // adopted them, so nothing in flight dies with a crashed worker.
        sent = channel.write(data, fds);
      } catch (err) {
        this.#sendRefused(link, conns, err);
        return false;
      }
      // Sent, or queued in the channel (it holds duplicates of the fds).
      link.inFlight.push(conns);
      this.#hooks.counters.messages++;
      if (channel.closed) {
        // The channel itself failed (EPIPE, ECONNRESET…): its 'error' names
        // the errno, and on 'close' the scheduler takes these back for another worker.
        link.lostError ??= new DispatchError(
          'CHANNEL_CLOSED',
          'sendmsg failed; the channel closed',
        );
        return true;
      }
      if (!sent) {
        link.blocked = true;
        return true;
      }
    }
    return true;
  }

  #view(count: number): { data: Uint8Array; fds: Int32Array } {
    let v = this.#views[count];
    if (v === undefined) {
      v = {
        data: this.#message.subarray(0, dispatchMessageLength(count)),
        fds: this.#fds.subarray(0, count),
      };
      this.#views[count] = v;
    }
    return v;
  }

  /**
   * The kernel refused one message (sendmsg → EMSGSIZE, ETOOMANYREFS,
   * ENOBUFS, EBADF…). The fds were not sent and are still ours: they go back
   * to the head of the line for another worker (this one is skipped until
   * the next retry pass), or are closed once they have failed maxAttempts
   * times. The log names the errno of that sendmsg. EBADF means one of the
   * fds was closed behind our back: only those are dropped (and logged);
   * the rest of the message is sent again without counting an attempt.
   */
  #sendRefused(link: WorkerLink, conns: Conn[], err: unknown): void {
    const hooks = this.#hooks;
    const code = errorCode(err);
    const n = conns.length;
    hooks.counters.errors.send += n;
    // The rest of its pending goes back too: it will be sent elsewhere.
    const rest = link.pending;
    link.pending = [];
    const back = n + rest.length;
    link.queued -= back;
    link.open -= back;
    link.dispatched -= back;
    link.refusing = true;
    hooks.log(
      'warn',
      `sendmsg of ${n} connection(s) to ${link.label} failed: ${code}; retrying on another worker`,
      { slot: link.slot, pid: link.pid, errno: code, connections: n },
    );
    let retry = conns;
    if (code === 'EBADF') {
      const gone = conns.filter((c) => !isOpen(c.fd));
      retry = conns.filter((c) => isOpen(c.fd));
      if (gone.length > 0) {
        hooks.log(
          'error',
          `${gone.length} connection fd(s) were closed before they could be sent (EBADF; ids ${gone.map((c) => c.id).join(', ')}); dropped`,
          { errno: code, connections: gone.length },
        );
      }
      if (gone.length === 0) for (const c of retry) c.attempts++;
    } else {
      for (const c of retry) c.attempts++;
    }
    hooks.takeBack([...retry, ...rest], `sendmsg failed: ${code}`);
    hooks.scheduleRetry();
  }
}

/** Whether an fd number is open (fstat succeeds). */
function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}
