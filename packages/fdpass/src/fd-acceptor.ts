// FdAcceptor: an accept loop over any listening stream socket (TCP or Unix)
// that hands out the accepted connections as raw fds, in batches, and can
// pause — stop calling accept(2) so the kernel backlog holds new connections
// — without closing the listening socket. For processes that pass accepted
// connections on (a prefork dispatcher) and must never wrap them in a
// net.Socket of their own. The listening fd is owned through the shared
// AcceptLoop (accept-loop.ts); the fds emitted belong to the listener of 'connections'.
import { EventEmitter } from 'node:events';
import { AcceptLoop } from './accept-loop.js';
import { FdPassError, fromNative } from './errors.js';
import { loadNative, type NativeBinding } from './native-loader.js';
import { checkListenOptions, listenOnPath, type SocketFileIdentity } from './socket-file.js';

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

/**
 * Events: 'connections' (fds: number[] — owned by the listener from then on;
 * with no listener they are closed), 'error' (FdPassError: accept failures
 * such as EMFILE, after which accepting resumes by itself; a failed poll,
 * after which the acceptor is closed), 'close'.
 */
export class FdAcceptor extends EventEmitter {
  readonly #native: NativeBinding;
  readonly #loop: AcceptLoop;

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
    checkListenOptions('FdAcceptor.listen', backlog, mode);
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
    this.#loop = new AcceptLoop(
      native,
      fd,
      { path, identity, budget, syscall: 'accept4' },
      {
        readable: () => this.#onReadable(),
        broken: (err) => {
          this.close();
          this.emit('error', err);
        },
        watchFailed: (err) => this.#watchFailed(err),
      },
    );
    this.#native = native;
    const err = this.#loop.start();
    if (err !== null) this.#watchFailed(err);
  }

  /** The listening fd, owned by the acceptor; -1 once closed. Borrow only. */
  get fd(): number {
    return this.#loop.fd;
  }

  /** The Unix path for an acceptor made by listen(), else null. */
  get path(): string | null {
    return this.#loop.path;
  }

  get closed(): boolean {
    return this.#loop.closed;
  }

  get paused(): boolean {
    return this.#loop.paused;
  }

  /** Connections accepted per readiness event; a caller may lower it to what it can take. */
  get acceptBudget(): number {
    return this.#loop.budget;
  }

  set acceptBudget(n: number) {
    this.#loop.budget = checkBudget(n, 'acceptor.acceptBudget = n');
  }

  /**
   * Stops accepting: new connections wait in the kernel's listen backlog
   * (the kernel drops SYNs beyond it, and clients retry) — none is refused
   * or reset by us. Idempotent.
   */
  pause(): void {
    this.#loop.pause();
  }

  resume(): void {
    this.#loop.resume();
  }

  /**
   * Accepts, right now, up to `max` connections already waiting in the
   * backlog (for instance to take them all before close(), which would
   * otherwise reset them). Returns their fds, owned by the caller. Accept
   * errors other than "nothing waiting" are thrown as FdPassError.
   */
  acceptNow(max: number): number[] {
    if (!Number.isInteger(max) || max < 0) throw new TypeError('Usage: acceptor.acceptNow(max)');
    if (this.#loop.closed) {
      throw new FdPassError('ERR_SOCKET_CLOSED', 'acceptNow on a closed acceptor');
    }
    return this.#loop.acceptWaiting(max);
  }

  /**
   * Closes the listening socket (connections still in its backlog are reset
   * by the kernel; take them first with acceptNow) and unlinks a socket file
   * this acceptor created. Idempotent; 'close' follows on the next tick.
   */
  close(): void {
    if (!this.#loop.close()) return;
    process.nextTick(() => this.emit('close'));
  }

  ref(): this {
    this.#loop.setRef(true);
    return this;
  }

  unref(): this {
    this.#loop.setRef(false);
    return this;
  }

  #watchFailed(err: FdPassError): void {
    this.close();
    process.nextTick(() => this.emit('error', err));
  }

  #onReadable(): void {
    const fds: number[] = [];
    const failure = this.#loop.acceptRound((fd) => {
      fds.push(fd);
      return true;
    });
    if (fds.length > 0) {
      if (this.listenerCount('connections') === 0) {
        // Nobody to own them: close rather than leak.
        this.#native.closeFds(Int32Array.from(fds), fds.length);
      } else {
        this.emit('connections', fds);
      }
    }
    if (failure !== null && !this.#loop.closed) this.emit('error', failure);
  }
}

function checkBudget(n: unknown, where: string): number {
  if (n === undefined) return 64;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1 << 16) {
    throw new TypeError(`Usage: ${where}: acceptBudget must be an integer 1..65536`);
  }
  return n;
}
