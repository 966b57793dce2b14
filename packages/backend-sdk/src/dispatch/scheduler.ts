// The master's dispatch engine: which worker gets each accepted connection
// (the least loaded live one), the bounded queue per worker, and the books
// that say who owns every fd — from accept until the worker reports it
// adopted the connection, the master keeps its own copy, so a failed send or
// a crashed worker never loses a connection: it is sent again elsewhere, or
// closed with a log line naming the errno. Batching fds into sendmsg is
// scheduler-send.ts, applying what workers report is scheduler-receive.ts.
// It talks to workers through FdSocket channels and knows nothing of
// processes (worker-pool.ts spawns them) or of listening sockets.
import { EventEmitter } from 'node:events';
import { closeFds, type FdPassError, type FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { type DispatchLogger, errorCode } from './log.js';
import {
  type Conn,
  type SchedulerCounters,
  type SchedulerHooks,
  type SchedulerLimits,
  WorkerLink,
} from './scheduler-link.js';
import { ReportReceiver } from './scheduler-receive.js';
import { DispatchSender } from './scheduler-send.js';
import { type DispatchEndpoint, encodeHello, encodeStop, MAX_CONNECTION_ID } from './wire.js';

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
  readonly #sender: DispatchSender;
  readonly #receiver: ReportReceiver;

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
    const hooks: SchedulerHooks = {
      counters: this.counters,
      log,
      takeBack: (conns, reason) => this.#takeBack(conns, reason),
      scheduleRetry: () => this.#scheduleRetry(),
    };
    this.#sender = new DispatchSender(hooks);
    this.#receiver = new ReportReceiver({
      ...hooks,
      ready: (link) => {
        this.emit('ready', link);
        this.#afterChange();
      },
      changed: () => this.#afterChange(),
    });
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
    channel.on('message', (m: ReceivedMessage) => this.#receiver.onMessage(link, m));
    channel.on('error', (err: FdPassError) => this.#receiver.onChannelError(link, err));
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

  /** Sends a link's pending connections, up to 253 fds per message, then STOP if asked. */
  #flush(link: WorkerLink): void {
    if (!this.#sender.sendPending(link)) return;
    const channel = link.channel;
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
