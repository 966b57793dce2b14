// FdServer: a listening AF_UNIX socket watched on the event loop; every
// accepted connection becomes an FdSocket. Owns, through the shared
// AcceptLoop (accept-loop.ts), the listening fd and the socket file it
// created (unlinked on close if it is still ours), and the spare fd of reserveFd.
import { EventEmitter } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { AcceptLoop } from './accept-loop.js';
import { FdPassError, fromNative } from './errors.js';
import { type FdSocket, wrapFd } from './fd-socket.js';
import {
  defaultSocketKind,
  type FdSocketOptions,
  kindToType,
  type SocketKind,
  validateSocketOptions,
} from './fd-socket-options.js';
import { loadNative, type NativeBinding } from './native-loader.js';
import { checkListenOptions, listenOnPath, type SocketFileIdentity } from './socket-file.js';

export interface ListenOptions extends FdSocketOptions {
  kind?: SocketKind;
  /** listen(2) backlog (default 511, like Node). */
  backlog?: number;
  /** chmod applied to the socket file before listen(), e.g. 0o600. */
  mode?: number;
  /** Connections accepted per readiness event before yielding (default 64). */
  acceptBudget?: number;
  /**
   * Hold one spare descriptor (on /dev/null) for fd pressure. When accept
   * fails with EMFILE/ENFILE the spare is given up so one waiting
   * connection can be accepted and emitted as 'pressure' — its owner can
   * tell the peer to come back later instead of leaving it in the backlog
   * with no answer. The spare is taken again once that connection closes.
   */
  reserveFd?: boolean;
}

/**
 * Events: 'connection' (FdSocket); 'pressure' (FdSocket, 'EMFILE' | 'ENFILE'): a
 * connection accepted on the spare fd (reserveFd) while fds are exhausted;
 * 'error' (FdPassError); 'close'.
 */
export class FdServer extends EventEmitter {
  readonly #native: NativeBinding;
  readonly #loop: AcceptLoop;
  readonly #path: string;
  readonly #kind: SocketKind;
  readonly #socketOptions: FdSocketOptions;
  readonly #take = (fd: number): boolean => this.#onAccepted(fd);
  /** The spare fd for 'pressure' (reserveFd), or null when given up or not asked for. */
  #reserve: number | null = null;
  readonly #wantsReserve: boolean;

  /**
   * Binds and listens on `path`. An existing file at `path` is never removed
   * for you (EADDRINUSE): deciding that a stale socket is safe to delete is
   * the caller's call.
   */
  static async listen(path: string, opts: ListenOptions = {}): Promise<FdServer> {
    if (typeof path !== 'string' || path.length === 0) {
      throw new TypeError('Usage: FdServer.listen(path: string, opts?)');
    }
    validateSocketOptions(opts, 'FdServer.listen(path, opts)');
    const { backlog = 511, mode, acceptBudget = 64, reserveFd } = opts;
    checkListenOptions('FdServer.listen', backlog, mode);
    if (!Number.isInteger(acceptBudget) || acceptBudget < 1) {
      throw new TypeError('Usage: FdServer.listen(path, { acceptBudget: positive integer })');
    }
    if (reserveFd !== undefined && typeof reserveFd !== 'boolean') {
      throw new TypeError('Usage: FdServer.listen(path, { reserveFd: boolean })');
    }
    const native = loadNative();
    const kind = opts.kind ?? defaultSocketKind;
    const server = listenOnPath(
      native,
      path,
      kindToType(native, kind),
      backlog,
      mode,
      (fd, identity) => new FdServer(native, fd, path, kind, identity, opts, acceptBudget),
    );
    // From here the server owns the fd (its watcher closes it) and the socket
    // file: a failure to start must close the server, and listenOnPath must
    // not close the fd a second time.
    server.#start();
    return server;
  }

  private constructor(
    native: NativeBinding,
    fd: number,
    path: string,
    kind: SocketKind,
    identity: SocketFileIdentity | null,
    opts: ListenOptions,
    budget: number,
  ) {
    super();
    this.#loop = new AcceptLoop(
      native,
      fd,
      { path, identity, budget, syscall: 'accept' },
      {
        readable: () => this.#onReadable(),
        broken: (err) => {
          this.emit('error', err);
          this.close();
        },
        watchFailed: (err) => {
          this.close();
          process.nextTick(() => this.emit('error', err));
        },
      },
    );
    // The loop owns fd from here: nothing below may throw (see #start).
    this.#native = native;
    this.#path = path;
    this.#kind = kind;
    const {
      kind: _k,
      backlog: _b,
      mode: _m,
      acceptBudget: _a,
      reserveFd: _r,
      ...socketOptions
    } = opts;
    this.#socketOptions = socketOptions;
    this.#wantsReserve = opts.reserveFd === true;
  }

  #start(): void {
    if (this.#wantsReserve) this.#takeReserve();
    const err = this.#loop.start();
    if (err !== null) {
      this.close();
      throw err;
    }
  }

  /** The listening fd, owned by the server; -1 once closed. */
  get fd(): number {
    return this.#loop.fd;
  }

  get path(): string {
    return this.#path;
  }

  get kind(): SocketKind {
    return this.#kind;
  }

  get closed(): boolean {
    return this.#loop.closed;
  }

  /**
   * Stops accepting, closes the listening fd and unlinks the socket file if
   * it is still the one this server created. Idempotent; 'close' follows on
   * the next tick.
   */
  close(): void {
    if (!this.#loop.close()) return;
    this.#releaseReserve();
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

  /** Gives up the spare fd to accept one connection for 'pressure'; true when one was emitted. */
  #acceptUnderPressure(code: 'EMFILE' | 'ENFILE'): boolean {
    if (this.#reserve === null || this.listenerCount('pressure') === 0) return false;
    this.#releaseReserve();
    const fd = this.#loop.acceptOne();
    if (fd < 0) {
      // Someone else took the slot, or the limit is system-wide (ENFILE).
      this.#takeReserve();
      return false;
    }
    let socket: FdSocket;
    try {
      socket = wrapFd(this.#native, fd, this.#kind, this.#socketOptions);
    } catch {
      this.#native.closeFd(fd);
      this.#takeReserve();
      return false;
    }
    // The spare comes back when this connection gives its fd back.
    socket.once('close', () => {
      if (!this.#loop.closed && this.#reserve === null) this.#takeReserve();
    });
    this.emit('pressure', socket, code);
    return true;
  }

  // The spare is opened and closed by fs and by nothing else.
  #takeReserve(): void {
    try {
      this.#reserve = openSync('/dev/null', 'r');
    } catch {
      // Still out of fds: the next successful accept tries again.
      this.#reserve = null;
    }
  }

  #releaseReserve(): void {
    if (this.#reserve === null) return;
    closeSync(this.#reserve);
    this.#reserve = null;
  }

  #onReadable(): void {
    const failure = this.#loop.acceptRound(this.#take);
    if (failure === null) return;
    // EMFILE/ENFILE: answer one waiting peer with the spare fd if we hold
    // one; otherwise report. Either way the loop backs off, then retries.
    const code: string = failure.code;
    if ((code === 'EMFILE' || code === 'ENFILE') && this.#acceptUnderPressure(code)) return;
    this.emit('error', failure);
  }

  /** An accepted connection; false ends this round. */
  #onAccepted(fd: number): boolean {
    if (this.#reserve === null && this.#wantsReserve) this.#takeReserve();
    let socket: FdSocket;
    try {
      socket = wrapFd(this.#native, fd, this.#kind, this.#socketOptions);
    } catch (err) {
      this.#native.closeFd(fd);
      this.emit('error', err instanceof FdPassError ? err : fromNative(err));
      return false;
    }
    if (this.listenerCount('connection') === 0) {
      // Nobody to own it: close rather than leak.
      socket.close();
      return true;
    }
    this.emit('connection', socket);
    return true;
  }
}
