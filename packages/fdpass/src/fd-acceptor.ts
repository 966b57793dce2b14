// FdAcceptor: an accept loop over any listening stream socket (TCP or Unix)
// that hands out the accepted connections as raw fds, in batches, and can
// pause — stop calling accept(2) so the kernel backlog holds new connections
// — without closing the listening socket. For processes that pass accepted
// connections on (a prefork dispatcher) and must never wrap them in a
// net.Socket of their own. Owns the listening fd; the fds it emits belong to
// the listener of 'connections'.
import { EventEmitter } from 'node:events';
import { errnoError, errnoName, FdPassError, fromNative } from './errors.js';
import { loadNative, type NativeBinding, type NativeWatcher } from './native-loader.js';
import { listenOnPath, type SocketFileIdentity, unlinkIfOurs } from './socket-file.js';

export interface AcceptorOptions {
  /** Connections accepted per readiness event before yielding (default 64; adjustable later). */
  acceptBudget?: number;
}

export interface AcceptorListenOptions extends AcceptorOptions {
  /** listen(2) backlog (default 511, like Node). */
  backlog?: number;
  /** chmod applied to the socket file before listen(), e.g. 0o600. */
  mode?: number;
}

/** EMFILE and friends leave the connection in the backlog: wait this long before retrying. */
const ACCEPT_BACKOFF_MS = 100;

/**
 * Events: 'connections' (fds: number[] — owned by the listener from then on;
 * with no listener they are closed), 'error' (FdPassError: accept failures
 * such as EMFILE, after which accepting resumes by itself; a failed poll,
 * after which the acceptor is closed), 'close'.
 */
export class FdAcceptor extends EventEmitter {
  readonly #native: NativeBinding;
  readonly #watcher: NativeWatcher;
  readonly #fd: number;
  readonly #path: string | null;
  readonly #identity: SocketFileIdentity | null;
  #budget: number;
  #paused = false;
  #closed = false;
  #backoff: NodeJS.Timeout | null = null;
  #watching = false;
  readonly #eagain: number;

  /**
   * Takes ownership of a listening TCP or Unix stream socket (for instance a
   * duplicate of a net.Server's fd). On a thrown error the caller still owns
   * it. The fd is made non-blocking.
   */
  static fromFd(fd: number, opts: AcceptorOptions = {}): FdAcceptor {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError('Usage: FdAcceptor.fromFd(fd, opts?)');
    const budget = checkBudget(opts.acceptBudget, 'FdAcceptor.fromFd(fd, opts)');
    const native = loadNative();
    let family: number;
    let type: number;
    let listening: number;
    try {
      family = native.socketFamily(fd);
      type = native.socketType(fd);
      listening = native.isListening(fd);
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    const { AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM } = native.constants;
    if (type !== SOCK_STREAM || (family !== AF_UNIX && family !== AF_INET && family !== AF_INET6)) {
      throw new FdPassError(
        'ERR_INVALID_FD',
        `FdAcceptor.fromFd: fd ${fd} is not a TCP or Unix stream socket (family ${family}, type ${type})`,
      );
    }
    if (listening !== 1) {
      throw new FdPassError('ERR_INVALID_FD', `FdAcceptor.fromFd: fd ${fd} is not listening`);
    }
    try {
      native.setNonBlocking(fd);
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    return new FdAcceptor(native, fd, budget, null, null);
  }

  /**
   * Binds and listens on a Unix stream socket at `path`. An existing file is
   * never removed for you (EADDRINUSE). close() unlinks the file if it is
   * still the one this acceptor created.
   */
  static async listen(path: string, opts: AcceptorListenOptions = {}): Promise<FdAcceptor> {
    if (typeof path !== 'string' || path.length === 0) {
      throw new TypeError('Usage: FdAcceptor.listen(path: string, opts?)');
    }
    const budget = checkBudget(opts.acceptBudget, 'FdAcceptor.listen(path, opts)');
    const { backlog = 511, mode } = opts;
    if (!Number.isInteger(backlog) || backlog < 0) {
      throw new TypeError('Usage: FdAcceptor.listen(path, { backlog: non-negative integer })');
    }
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) {
      throw new TypeError('Usage: FdAcceptor.listen(path, { mode: 0..0o7777 })');
    }
    const native = loadNative();
    return listenOnPath(
      native,
      path,
      native.constants.SOCK_STREAM,
      backlog,
      mode,
      (fd, identity) => new FdAcceptor(native, fd, budget, path, identity),
    );
  }

  private constructor(
    native: NativeBinding,
    fd: number,
    budget: number,
    path: string | null,
    identity: SocketFileIdentity | null,
  ) {
    super();
    try {
      this.#watcher = new native.Watcher(fd, (status) => this.#onReadable(status));
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    this.#native = native;
    this.#eagain = native.constants.EAGAIN;
    this.#fd = fd;
    this.#budget = budget;
    this.#path = path;
    this.#identity = identity;
    this.#updateWatch();
  }

  /** The listening fd, owned by the acceptor; -1 once closed. Borrow only. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  /** The Unix path for an acceptor made by listen(), else null. */
  get path(): string | null {
    return this.#path;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Connections accepted per readiness event; a caller may lower it to what it can take. */
  get acceptBudget(): number {
    return this.#budget;
  }

  set acceptBudget(n: number) {
    this.#budget = checkBudget(n, 'acceptor.acceptBudget = n');
  }

  /**
   * Stops accepting: new connections wait in the kernel's listen backlog
   * (the kernel drops SYNs beyond it, and clients retry) — none is refused
   * or reset by us. Idempotent.
   */
  pause(): void {
    this.#paused = true;
    this.#updateWatch();
  }

  resume(): void {
    this.#paused = false;
    this.#updateWatch();
  }

  /**
   * Accepts, right now, up to `max` connections already waiting in the
   * backlog (for instance to take them all before close(), which would
   * otherwise reset them). Returns their fds, owned by the caller. Accept
   * errors other than "nothing waiting" are thrown as FdPassError.
   */
  acceptNow(max: number): number[] {
    if (!Number.isInteger(max) || max < 0) throw new TypeError('Usage: acceptor.acceptNow(max)');
    if (this.#closed) throw new FdPassError('ERR_SOCKET_CLOSED', 'acceptNow on a closed acceptor');
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
      if (out.length > 0) break; // hand over what we have; the error recurs on the next call
      throw errnoError(-fd, 'accept4');
    }
    return out;
  }

  /**
   * Closes the listening socket (connections still in its backlog are reset
   * by the kernel; take them first with acceptNow) and unlinks a socket file
   * this acceptor created. Idempotent; 'close' follows on the next tick.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#backoff) clearTimeout(this.#backoff);
    this.#backoff = null;
    this.#watcher.close();
    if (this.#path !== null && this.#identity) unlinkIfOurs(this.#path, this.#identity);
    process.nextTick(() => this.emit('close'));
  }

  ref(): this {
    if (!this.#closed) this.#watcher.setRef(true);
    return this;
  }

  unref(): this {
    if (!this.#closed) this.#watcher.setRef(false);
    return this;
  }

  #updateWatch(): void {
    if (this.#closed) return;
    const want = !this.#paused && this.#backoff === null;
    if (want === this.#watching) return;
    const rc = this.#watcher.setEvents(want ? this.#native.constants.UV_READABLE : 0);
    if (rc < 0) {
      const err = errnoError(-rc, 'uv_poll_start');
      this.close();
      process.nextTick(() => this.emit('error', err));
      return;
    }
    this.#watching = want;
  }

  #backOff(): void {
    if (this.#backoff) return;
    this.#backoff = setTimeout(() => {
      this.#backoff = null;
      this.#updateWatch();
    }, ACCEPT_BACKOFF_MS);
    this.#updateWatch();
  }

  #onReadable(status: number): void {
    if (this.#closed || this.#paused) return;
    if (status < 0) {
      const soError = this.#native.socketError(this.#fd);
      const err = errnoError(soError > 0 ? soError : -status, 'poll');
      this.close();
      this.emit('error', err);
      return;
    }
    const native = this.#native;
    const budget = this.#budget;
    const fds: number[] = [];
    let failure: FdPassError | null = null;
    while (fds.length < budget) {
      const fd = native.accept(this.#fd);
      if (fd >= 0) {
        fds.push(fd);
        continue;
      }
      // Every readiness event ends on EAGAIN: a number compare, not a name lookup.
      if (-fd === this.#eagain) break;
      const code = errnoName(-fd);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
      // The peer gave up between the handshake and accept: nothing to do.
      if (code === 'ECONNABORTED' || code === 'EPROTO') continue;
      // EMFILE/ENFILE/ENOBUFS…: the connection stays in the backlog and the
      // socket stays readable, so level-triggered polling would spin.
      failure = errnoError(-fd, 'accept4');
      break;
    }
    if (failure !== null) this.#backOff();
    if (fds.length > 0) {
      if (this.listenerCount('connections') === 0) {
        // Nobody to own them: close rather than leak.
        native.closeFds(Int32Array.from(fds), fds.length);
      } else {
        this.emit('connections', fds);
      }
    }
    if (failure !== null && !this.#closed) this.emit('error', failure);
  }
}

function checkBudget(n: unknown, where: string): number {
  if (n === undefined) return 64;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1 << 16) {
    throw new TypeError(`Usage: ${where}: acceptBudget must be an integer 1..65536`);
  }
  return n;
}
