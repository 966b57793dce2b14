// The accept loop under FdServer and FdAcceptor: owns the listening fd
// (through its watcher) and the socket file it may have created; accepts up
// to a budget per readiness event, backs off after failures that would spin
// (EMFILE…), pauses. What an accepted fd becomes, and every event, is the owner's.
import { errnoError, errnoName, type FdPassError, fromNative } from './errors.js';
import type { NativeBinding } from './native-loader.js';
import { type SocketFileIdentity, unlinkIfOurs } from './socket-file.js';
import { Watcher } from './watcher.js';

/** EMFILE and friends leave the connection in the backlog: wait this long before retrying. */
const ACCEPT_BACKOFF_MS = 100;

/** What the owner does when the listening socket needs it. */
export interface AcceptLoopHooks {
  /** Connections are waiting: call acceptRound. */
  readable(): void;
  /** poll failed: the listening socket is unusable. */
  broken(err: FdPassError): void;
  /** Watching again after a pause or a back-off failed (uv_poll_start). */
  watchFailed(err: FdPassError): void;
}

export interface AcceptLoopOptions {
  /** The socket file this loop created and unlinks on close, if any. */
  path: string | null;
  identity: SocketFileIdentity | null;
  budget: number;
  /** The syscall named in accept errors. */
  syscall: string;
}

export class AcceptLoop {
  readonly #native: NativeBinding;
  readonly #watcher: Watcher;
  readonly #fd: number;
  readonly #path: string | null;
  readonly #identity: SocketFileIdentity | null;
  readonly #syscall: string;
  readonly #hooks: AcceptLoopHooks;
  readonly #eagain: number;
  #budget: number;
  #paused = false;
  #closed = false;
  #backoff: NodeJS.Timeout | null = null;
  #watching = false;

  /** Takes fd (its watcher closes it from here); on a throw the caller still owns it. */
  constructor(native: NativeBinding, fd: number, opts: AcceptLoopOptions, hooks: AcceptLoopHooks) {
    try {
      this.#watcher = new Watcher(native, fd, (status) => this.#onPoll(status));
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    this.#native = native;
    this.#eagain = native.constants.EAGAIN;
    this.#fd = fd;
    this.#path = opts.path;
    this.#identity = opts.identity;
    this.#budget = opts.budget;
    this.#syscall = opts.syscall;
    this.#hooks = hooks;
  }

  /** The listening fd; -1 once closed. Borrow only. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  get path(): string | null {
    return this.#path;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Connections accepted per readiness event (checked by the owner). */
  get budget(): number {
    return this.#budget;
  }

  set budget(n: number) {
    this.#budget = n;
  }

  /** Starts watching; returns the uv_poll_start failure for the owner to report. */
  start(): FdPassError | null {
    return this.#setWatch();
  }

  pause(): void {
    this.#paused = true;
    this.#updateWatch();
  }

  resume(): void {
    this.#paused = false;
    this.#updateWatch();
  }

  /** Closes the fd and unlinks a socket file still ours; false when already closed. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    if (this.#backoff) clearTimeout(this.#backoff);
    this.#backoff = null;
    this.#watcher.close();
    if (this.#path !== null && this.#identity) unlinkIfOurs(this.#path, this.#identity);
    return true;
  }

  setRef(ref: boolean): void {
    if (!this.#closed) this.#watcher.setRef(ref);
  }

  /** One accept(2): an fd (now the caller's) or -errno. */
  acceptOne(): number {
    return this.#native.accept(this.#fd);
  }

  /**
   * Accepts up to `budget` (the loop's, unless given) connections waiting now, handing each
   * fd to `take`, which owns it from then on and returns false to end the round.
   * A failure other than "nothing waiting" (EMFILE, ENFILE, ENOBUFS…) leaves
   * the connection in the backlog and the socket readable, so level-triggered
   * polling would spin: the loop backs off briefly and returns the failure.
   */
  acceptRound(take: (fd: number) => boolean, budget = this.#budget): FdPassError | null {
    const native = this.#native;
    let taken = 0;
    while (taken < budget && !this.#closed) {
      const fd = native.accept(this.#fd);
      if (fd >= 0) {
        taken++;
        if (!take(fd)) return null;
        continue;
      }
      // Every readiness event ends on EAGAIN: a number compare, not a name lookup.
      if (-fd === this.#eagain) return null;
      const code = errnoName(-fd);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return null;
      // The peer gave up between the handshake and accept: nothing to do.
      if (code === 'ECONNABORTED' || code === 'EPROTO') continue;
      this.#backOff();
      return errnoError(-fd, this.#syscall);
    }
    return null;
  }

  /**
   * Accepts, right now, up to `max` connections already waiting. Accept
   * errors other than "nothing waiting" are thrown, unless some fds were
   * taken: those are returned and the error recurs on the next call.
   */
  acceptWaiting(max: number): number[] {
    const out: number[] = [];
    while (out.length < max) {
      const fd = this.#native.accept(this.#fd);
      if (fd >= 0) {
        out.push(fd);
        continue;
      }
      const code = errnoName(-fd);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
      if (code === 'ECONNABORTED' || code === 'EPROTO') continue;
      if (out.length > 0) break;
      throw errnoError(-fd, this.#syscall);
    }
    return out;
  }

  #onPoll(status: number): void {
    if (this.#closed || this.#paused) return;
    if (status < 0) {
      const soError = this.#native.socketError(this.#fd);
      this.#hooks.broken(errnoError(soError > 0 ? soError : -status, 'poll'));
      return;
    }
    this.#hooks.readable();
  }

  #backOff(): void {
    if (this.#backoff) return;
    this.#backoff = setTimeout(() => {
      this.#backoff = null;
      this.#updateWatch();
    }, ACCEPT_BACKOFF_MS);
    this.#updateWatch();
  }

  #updateWatch(): void {
    const err = this.#setWatch();
    if (err !== null) this.#hooks.watchFailed(err);
  }

  #setWatch(): FdPassError | null {
    if (this.#closed) return null;
    const want = !this.#paused && this.#backoff === null;
    if (want === this.#watching) return null;
    const rc = this.#watcher.setEvents(want ? this.#native.constants.UV_READABLE : 0);
    if (rc < 0) return errnoError(-rc, 'uv_poll_start');
    this.#watching = want;
    return null;
  }
}
