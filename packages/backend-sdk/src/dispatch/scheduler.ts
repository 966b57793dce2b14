// The master's dispatch engine: which worker gets each accepted connection
// (the least loaded live one), the bounded queue per worker, batching many
// fds into one sendmsg, and the books that say who owns every fd — from
// accept until the worker reports it adopted the connection, the master
// keeps its own copy, so a failed send or a crashed worker never loses a
// connection: it is sent again elsewhere, or closed with a log line naming
// the errno. It talks to workers through FdSocket channels and knows nothing
// of processes (dispatcher.ts spawns them) or of listening sockets.
import { EventEmitter } from 'node:events';
import { fstatSync } from 'node:fs';
import { closeFds, type FdPassError, type FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { type DispatchLogger, errorCode } from './dispatch-log.js';
import {
  type DispatchEndpoint,
  DropReason,
  decodeWorkerMessage,
  dispatchMessageLength,
  encodeHello,
  encodeStop,
  MAX_CONNECTION_ID,
  MAX_FDS_PER_DISPATCH,
  putDispatchHeader,
  putDispatchRecord,
  ReportKind,
} from './dispatch-wire.js';

export interface SchedulerLimits {
  /** Connections sent to a worker (or about to be) and not yet adopted by it. */
  maxQueuePerWorker: number;
  /** Connections a worker holds at once: queued + adopted and still open. */
  maxConnectionsPerWorker: number;
  /** After this many connections a worker is retired (stop sending, drain, replace). */
  maxRequestsPerWorker?: number | undefined;
  /** Told to workers with STOP: how long they may take to drain. */
  shutdownDeadlineMs: number;
  /** Sends of one connection before it is given up and closed (default 3). */
  maxAttempts?: number;
}

interface Conn {
  fd: number;
  id: number;
  listener: number;
  acceptedAt: number;
  attempts: number;
}

export type LinkState = 'starting' | 'ready' | 'retiring' | 'lost';

/** The master's view of one worker, through its channel. */
export class WorkerLink {
  state: LinkState = 'starting';
  /** Reported by the worker itself in READY. */
  reportedPid = 0;
  /** Assigned, not yet sent. */
  pending: Conn[] = [];
  /** Sent, oldest first, awaiting ADOPTED or DROPPED. */
  inFlight: Conn[][] = [];
  /** pending + in flight. */
  queued = 0;
  /** queued + adopted and still open. */
  open = 0;
  /** Connections assigned over its life (rotation counts these). */
  dispatched = 0;
  /** The channel's write queue is over its high-water mark: wait for 'drain'. */
  blocked = false;
  /** The kernel refused a message to it: skip it until the next retry pass. */
  refusing = false;
  stopRequested = false;
  stopSent = false;
  /** Why the channel was lost, when it was an error. */
  lostError: Error | null = null;
  dirty = false;

  constructor(
    readonly slot: number,
    readonly generation: number,
    readonly pid: number,
    readonly channel: FdSocket,
  ) {}

  get label(): string {
    return `worker ${this.slot} (pid ${this.pid})`;
  }
}

export interface SchedulerCounters {
  accepted: number;
  /** Connections adopted by a worker. */
  dispatched: number;
  completed: number;
  redispatched: number;
  /** DISPATCH messages sent (each carries up to 253 connections). */
  messages: number;
  adoptSumMs: number;
  adoptCount: number;
  errors: {
    /** Connections in a sendmsg the kernel refused (the message, not the channel). */
    send: number;
    /** Connections in dispatches that never reached a worker whole. */
    dropped: number;
    /** Connections a worker received but could not adopt. */
    adopt: number;
    /** Connections the master closed after giving up on them. */
    closed: number;
    /** Adopted connections still open when their worker died. */
    abandoned: number;
    /** Malformed or impossible messages from a worker. */
    protocol: number;
  };
}

const RETRY_DELAY_MS = 10;

/**
 * Events: 'ready' (link) once a worker reported READY; 'retire' (link) when
 * it reached maxRequestsPerWorker (STOP is already on its way); 'lost'
 * (link) when its channel closed — every connection it had not adopted is
 * already taken back.
 */
export class DispatchScheduler extends EventEmitter {
  readonly counters: SchedulerCounters = {
    accepted: 0,
    dispatched: 0,
    completed: 0,
    redispatched: 0,
    messages: 0,
    adoptSumMs: 0,
    adoptCount: 0,
    errors: { send: 0, dropped: 0, adopt: 0, closed: 0, abandoned: 0, protocol: 0 },
  };

  readonly #endpoints: DispatchEndpoint[];
  readonly #limits: Required<Omit<SchedulerLimits, 'maxRequestsPerWorker'>> & {
    maxRequestsPerWorker: number;
  };
  readonly #log: DispatchLogger;
  readonly #onCapacity: (free: number) => void;
  #links: WorkerLink[] = [];
  /** Accepted or taken back, waiting for a worker with room; oldest first. */
  #overflow: Conn[] = [];
  #nextId = 1;
  #rotor = 0;
  #shuttingDown = false;
  #dirty: WorkerLink[] = [];
  #retired: WorkerLink[] = [];
  #lastFree = Number.NaN;
  #retryTimer: NodeJS.Timeout | null = null;
  #inFlush = false;
  readonly #message = new Uint8Array(dispatchMessageLength(MAX_FDS_PER_DISPATCH));
  readonly #fds = new Int32Array(MAX_FDS_PER_DISPATCH);
  /** Exact-length views of #message / #fds by count, made once: no allocation per send. */
  readonly #views: ({ data: Uint8Array; fds: Int32Array } | undefined)[] = [];

  constructor(
    endpoints: DispatchEndpoint[],
    limits: SchedulerLimits,
    log: DispatchLogger,
    onCapacity: (free: number) => void,
  ) {
    super();
    this.#endpoints = endpoints;
    this.#limits = {
      maxAttempts: 3,
      ...limits,
      maxRequestsPerWorker: limits.maxRequestsPerWorker ?? Number.POSITIVE_INFINITY,
    };
    this.#log = log;
    this.#onCapacity = onCapacity;
  }

  get links(): readonly WorkerLink[] {
    return this.#links;
  }

  /** Connections waiting in the master for a worker with room. */
  get overflow(): number {
    return this.#overflow.length;
  }

  /**
   * Starts serving a worker over `channel` (the master's end): sends its
   * hello; it becomes eligible once it answers READY. Throws (FdPassError)
   * if the hello cannot be sent; the caller still owns the channel then.
   */
  attach(channel: FdSocket, slot: number, generation: number, pid: number): WorkerLink {
    channel.write(
      encodeHello({
        slot,
        generation,
        endpoints: this.#endpoints,
        drainDeadlineMs: this.#limits.shutdownDeadlineMs,
      }),
    );
    const link = new WorkerLink(slot, generation, pid, channel);
    this.#links.push(link);
    channel.on('message', (m: ReceivedMessage) => this.#onMessage(link, m));
    channel.on('error', (err: FdPassError) => this.#onChannelError(link, err));
    channel.on('drain', () => {
      link.blocked = false;
      this.#markDirty(link);
      this.#afterChange();
    });
    channel.on('close', () => this.#lose(link));
    if (this.#shuttingDown) {
      link.stopRequested = true;
      this.#markDirty(link);
      this.#afterChange();
    }
    return link;
  }

  /** Takes ownership of freshly accepted connection fds and dispatches them. */
  submit(fds: readonly number[], listener: number): void {
    const now = performance.now();
    const overflow = this.#overflow;
    for (const fd of fds) {
      const conn: Conn = { fd, id: this.#nextId, listener, acceptedAt: now, attempts: 0 };
      this.#nextId = this.#nextId >= MAX_CONNECTION_ID ? 1 : this.#nextId + 1;
      this.counters.accepted++;
      if (overflow.length > 0 || !this.#assign(conn, this.#shuttingDown)) overflow.push(conn);
    }
    this.#afterChange();
  }

  /** Asks a worker to stop (drain and exit) after what it was already sent. */
  stop(link: WorkerLink): void {
    if (link.state === 'lost' || link.stopRequested) return;
    link.stopRequested = true;
    if (link.state === 'ready') link.state = 'retiring';
    this.#markDirty(link);
    this.#afterChange();
  }

  /**
   * Shutdown: everything accepted goes to a live worker now, queue limits
   * notwithstanding, then every worker is asked to stop. What no worker can
   * take is closed (and logged).
   */
  shutdown(): void {
    this.#shuttingDown = true;
    this.#drainOverflow(true);
    for (const link of this.#links) this.stop(link);
    this.#closeOverflow('the dispatcher is shutting down and no worker can take it');
    this.#afterChange();
  }

  /**
   * Closes every channel now. Connections not adopted by then are closed
   * and logged; nothing stays open.
   */
  closeAll(): void {
    this.#shuttingDown = true;
    for (const link of [...this.#links]) {
      link.channel.close();
      this.#lose(link);
    }
    this.#closeOverflow('the dispatcher closed before a worker took it');
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  /** Free room over all eligible workers, minus what already waits in the master. */
  freeCapacity(): number {
    const { maxQueuePerWorker, maxConnectionsPerWorker, maxRequestsPerWorker } = this.#limits;
    let free = 0;
    for (const l of this.#links) {
      if (l.state !== 'ready' || l.refusing) continue;
      const room = Math.min(
        maxQueuePerWorker - l.queued,
        maxConnectionsPerWorker - l.open,
        maxRequestsPerWorker - l.dispatched,
      );
      if (room > 0) free += room;
    }
    return free - this.#overflow.length;
  }

  // --- assignment and sending --------------------------------------------

  #pick(force: boolean): WorkerLink | null {
    const links = this.#links;
    const n = links.length;
    const { maxQueuePerWorker, maxConnectionsPerWorker } = this.#limits;
    let best: WorkerLink | null = null;
    let bestAt = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.#rotor + k) % n;
      const l = links[i] as WorkerLink;
      if (l.state !== 'ready' || l.refusing) continue;
      if (!force && (l.queued >= maxQueuePerWorker || l.open >= maxConnectionsPerWorker)) continue;
      if (best === null || l.open < best.open) {
        best = l;
        bestAt = i;
      }
    }
    // Ties go round the ring: the next search starts after the winner.
    if (best !== null) this.#rotor = (bestAt + 1) % n;
    return best;
  }

  #assign(conn: Conn, force: boolean): boolean {
    const link = this.#pick(force);
    if (link === null) return false;
    link.pending.push(conn);
    link.queued++;
    link.open++;
    link.dispatched++;
    this.#markDirty(link);
    if (link.dispatched >= this.#limits.maxRequestsPerWorker && link.state === 'ready') {
      link.state = 'retiring';
      link.stopRequested = true;
      this.#retired.push(link);
    }
    return true;
  }

  #markDirty(link: WorkerLink): void {
    if (link.dirty) return;
    link.dirty = true;
    this.#dirty.push(link);
  }

  #flushDirty(): void {
    if (this.#inFlush) return;
    this.#inFlush = true;
    try {
      while (this.#dirty.length > 0) {
        const links = this.#dirty;
        this.#dirty = [];
        for (const link of links) {
          link.dirty = false;
          this.#flush(link);
        }
      }
    } finally {
      this.#inFlush = false;
    }
    if (this.#retired.length > 0) {
      const retired = this.#retired;
      this.#retired = [];
      for (const link of retired) this.emit('retire', link);
    }
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

  /** Sends a link's pending connections, up to 253 fds per message, then STOP if asked. */
  #flush(link: WorkerLink): void {
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
        return;
      }
      // Sent, or queued in the channel (it holds duplicates of the fds).
      link.inFlight.push(conns);
      this.counters.messages++;
      if (channel.closed) {
        // The channel itself failed (EPIPE, ECONNRESET…): its 'error' names
        // the errno, and on 'close' #lose takes these back for another worker.
        link.lostError ??= new Error('sendmsg failed; the channel closed');
        return;
      }
      if (!sent) {
        link.blocked = true;
        return;
      }
    }
    if (
      link.stopRequested &&
      !link.stopSent &&
      link.pending.length === 0 &&
      !link.blocked &&
      link.state !== 'lost' &&
      !channel.closed
    ) {
      link.stopSent = true;
      try {
        channel.write(encodeStop(this.#limits.shutdownDeadlineMs));
      } catch (err) {
        this.#log('error', `STOP to ${link.label} failed: ${errorCode(err)}; closing its channel`, {
          slot: link.slot,
          pid: link.pid,
          errno: errorCode(err),
        });
        channel.close();
      }
    }
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
    const code = errorCode(err);
    const n = conns.length;
    this.counters.errors.send += n;
    // The rest of its pending goes back too: it will be sent elsewhere.
    const rest = link.pending;
    link.pending = [];
    const back = n + rest.length;
    link.queued -= back;
    link.open -= back;
    link.dispatched -= back;
    link.refusing = true;
    this.#log(
      'warn',
      `sendmsg of ${n} connection(s) to ${link.label} failed: ${code}; retrying on another worker`,
      { slot: link.slot, pid: link.pid, errno: code, connections: n },
    );
    let retry = conns;
    if (code === 'EBADF') {
      const gone = conns.filter((c) => !isOpen(c.fd));
      retry = conns.filter((c) => isOpen(c.fd));
      if (gone.length > 0) {
        this.#log(
          'error',
          `${gone.length} connection fd(s) were closed before they could be sent (EBADF; ids ${gone.map((c) => c.id).join(', ')}); dropped`,
          { errno: code, connections: gone.length },
        );
      }
      if (gone.length === 0) for (const c of retry) c.attempts++;
    } else {
      for (const c of retry) c.attempts++;
    }
    this.#takeBack([...retry, ...rest], `sendmsg failed: ${code}`);
    this.#scheduleRetry();
  }

  /** Back to the front of the line, in order; those out of attempts are closed. */
  #takeBack(conns: Conn[], reason: string): void {
    const keep: Conn[] = [];
    const give: Conn[] = [];
    for (const c of conns) (c.attempts >= this.#limits.maxAttempts ? give : keep).push(c);
    if (give.length > 0)
      this.#closeConns(give, `${reason} (after ${this.#limits.maxAttempts} attempts)`);
    if (keep.length > 0) {
      this.counters.redispatched += keep.length;
      this.#overflow = keep.concat(this.#overflow);
    }
  }

  #closeConns(conns: readonly Conn[], reason: string): void {
    if (conns.length === 0) return;
    try {
      closeFds(conns.map((c) => c.fd));
    } catch (err) {
      this.#log('error', `closing ${conns.length} connection fd(s) failed: ${errorCode(err)}`);
    }
    this.counters.errors.closed += conns.length;
    const ids = conns.slice(0, 8).map((c) => c.id);
    this.#log(
      'warn',
      `closed ${conns.length} connection(s) no worker took: ${reason} (ids ${ids.join(', ')}${conns.length > 8 ? ', …' : ''})`,
      { connections: conns.length, reason },
    );
  }

  #closeOverflow(reason: string): void {
    if (this.#overflow.length === 0) return;
    const all = this.#overflow;
    this.#overflow = [];
    this.#closeConns(all, reason);
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== null || this.#shuttingDown) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      for (const l of this.#links) l.refusing = false;
      this.#afterChange();
    }, RETRY_DELAY_MS);
    this.#retryTimer.unref();
  }

  #drainOverflow(force: boolean): void {
    const o = this.#overflow;
    let i = 0;
    while (i < o.length && this.#assign(o[i] as Conn, force)) i++;
    if (i > 0) this.#overflow = i === o.length ? [] : o.slice(i);
  }

  /** After anything that can free or use room: place waiting connections, send, re-gauge. */
  #afterChange(): void {
    if (this.#overflow.length > 0) this.#drainOverflow(this.#shuttingDown);
    this.#flushDirty();
    const free = this.freeCapacity();
    if (free !== this.#lastFree) {
      this.#lastFree = free;
      this.#onCapacity(free);
    }
  }

  // --- receiving -----------------------------------------------------------

  #onMessage(link: WorkerLink, { data, fds }: ReceivedMessage): void {
    if (link.state === 'lost') {
      if (fds.length > 0) closeFds(fds);
      return;
    }
    let msg: ReturnType<typeof decodeWorkerMessage>;
    try {
      msg = decodeWorkerMessage(data, fds.length);
    } catch (err) {
      if (fds.length > 0) closeFds(fds);
      this.#protocolFault(link, `sent a message that does not decode (${errorCode(err)})`, err);
      return;
    }
    if (msg.type === 'ready') {
      if (link.state !== 'starting') {
        this.#protocolFault(link, 'reported ready twice', null);
        return;
      }
      link.reportedPid = msg.pid;
      link.state = link.stopRequested ? 'retiring' : 'ready';
      this.emit('ready', link);
      this.#afterChange();
      return;
    }
    const now = performance.now();
    const adoptedFds: number[] = [];
    let ok = false;
    try {
      ok = this.#applyReport(link, msg.entries, now, adoptedFds);
    } finally {
      // The worker owns adopted connections now: drop the master's copies,
      // in one call — also when a later entry of the same report was a
      // protocol fault, or they would leak.
      if (adoptedFds.length > 0) {
        try {
          closeFds(adoptedFds);
        } catch (err) {
          this.#log(
            'error',
            `closing ${adoptedFds.length} adopted fd(s) failed: ${errorCode(err)}`,
          );
        }
      }
    }
    if (ok) this.#afterChange();
  }

  /**
   * Applies a report's entries; false at the first that breaks the
   * protocol (reported as a fault: the channel is gone).
   */
  #applyReport(
    link: WorkerLink,
    entries: Extract<ReturnType<typeof decodeWorkerMessage>, { entries: unknown }>['entries'],
    now: number,
    adopted: number[],
  ): boolean {
    const counters = this.counters;
    for (const e of entries) {
      switch (e.kind) {
        case ReportKind.ADOPTED: {
          if (e.count > link.inFlight.length) {
            this.#protocolFault(
              link,
              `reported ${e.count} adoptions, ${link.inFlight.length} in flight`,
              null,
            );
            return false;
          }
          for (let b = 0; b < e.count; b++) {
            const batch = link.inFlight.shift() as Conn[];
            link.queued -= batch.length;
            for (const c of batch) {
              adopted.push(c.fd);
              counters.adoptSumMs += now - c.acceptedAt;
            }
            counters.adoptCount += batch.length;
            counters.dispatched += batch.length;
          }
          break;
        }
        case ReportKind.DROPPED: {
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
          counters.errors.dropped += back.length;
          link.refusing = true;
          this.#scheduleRetry();
          const why = dropReasonName(e.reason);
          this.#log(
            'warn',
            `${link.label} could not receive ${back.length} connection(s) (${why}); retrying on another worker`,
            { slot: link.slot, pid: link.pid, reason: why, connections: back.length },
          );
          this.#takeBack(back, `${link.label} could not receive it (${why})`);
          break;
        }
        case ReportKind.CLOSED:
        case ReportKind.FAILED: {
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
          break;
        }
      }
    }
    return true;
  }

  #onChannelError(link: WorkerLink, err: FdPassError): void {
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
    this.#log(link.stopRequested ? 'info' : 'error', `channel to ${link.label} failed: ${code}`, {
      slot: link.slot,
      pid: link.pid,
      errno: code,
    });
  }

  #protocolFault(link: WorkerLink, what: string, err: unknown): void {
    this.counters.errors.protocol++;
    link.lostError = err instanceof Error ? err : new Error(what);
    this.#log('error', `${link.label} ${what}; closing its channel`, {
      slot: link.slot,
      pid: link.pid,
    });
    link.channel.close();
  }

  /** The channel is gone: take back everything the worker had not adopted. */
  #lose(link: WorkerLink): void {
    if (link.state === 'lost') return;
    link.state = 'lost';
    this.#links = this.#links.filter((l) => l !== link);
    if (this.#rotor >= this.#links.length) this.#rotor = 0;
    const sent: Conn[] = [];
    for (const batch of link.inFlight) for (const c of batch) sent.push(c);
    for (const c of sent) c.attempts++;
    const back = sent.concat(link.pending);
    const abandoned = link.open - link.queued;
    link.pending = [];
    link.inFlight = [];
    link.queued = 0;
    link.open = 0;
    if (abandoned > 0) {
      this.counters.errors.abandoned += abandoned;
      this.#log(
        'warn',
        `${link.label} is gone with ${abandoned} adopted connection(s) still open`,
        {
          slot: link.slot,
          pid: link.pid,
          connections: abandoned,
        },
      );
    }
    if (back.length > 0) {
      this.#log(
        'warn',
        `${link.label} is gone with ${back.length} connection(s) it had not adopted; dispatching them again`,
        { slot: link.slot, pid: link.pid, connections: back.length },
      );
      this.#takeBack(back, `${link.label} is gone`);
    }
    this.emit('lost', link);
    this.#afterChange();
    if (this.#shuttingDown && this.#links.every((l) => l.state !== 'ready')) {
      this.#closeOverflow('the dispatcher is shutting down and no worker can take it');
    }
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

/** Whether an fd number is open (fstat succeeds). */
function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}
