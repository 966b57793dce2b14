// FdServer: a listening AF_UNIX socket watched on the event loop; every
// accepted connection becomes an FdSocket. Owns, through the shared
// AcceptLoop (accept-loop.ts), the listening fd and the socket file it
// created (unlinked on close if it is still ours; an adopted listener's file
// is never touched), and the spare fd of reserveFd.
import { EventEmitter } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { AcceptLoop } from './accept-loop.js';
import { FdPassError, fromNative } from './errors.js';
import { type FdSocket, wrapFd } from './fd-socket.js';
import { adoptableKind } from './fd-socket-open.js';
import {
  defaultSocketKind,
  type FdSocketOptions,
  kindToType,
  type SocketKind,
  validateSocketOptions,
} from './fd-socket-options.js';
import { loadNative, type NativeBinding } from './native-loader.js';
import { checkListenOptions, listenOnPath, type SocketFileIdentity } from './socket-file.js';

/** Options of FdServer.fromFd: those of listen() that still apply to a socket already listening. */
export interface AdoptListenerOptions extends FdSocketOptions {
  /** Connections accepted per readiness event before yielding (default 64). */
  acceptBudget?: number;
  /** As in ListenOptions. */
  reserveFd?: boolean;
}

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
  /** Connections accepted so far (counts what a round took). */
  #accepted = 0;
  /** The rest of a round waits for the check phase (#onReadable). */
  #restScheduled = false;
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

  /**
   * Takes ownership of an AF_UNIX stream or seqpacket socket that is already
   * listening — inherited from a service manager (systemd socket
   * activation) or a predecessor process. The kind comes from the socket,
   * `path` from its bound address, and close() closes the fd but never
   * unlinks the socket file: whoever bound it owns it. When the fd is
   * refused (TypeError, ERR_INVALID_FD, or an errno from inspecting it) the
   * caller still owns it; if the event loop cannot watch it, it is closed.
   */
  static fromFd(fd: number, opts: AdoptListenerOptions = {}): FdServer {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError('Usage: FdServer.fromFd(fd, opts?)');
    validateSocketOptions(opts, 'FdServer.fromFd(fd, opts)');
    const { acceptBudget = 64, reserveFd } = opts;
    if (!Number.isInteger(acceptBudget) || acceptBudget < 1) {
      throw new TypeError('Usage: FdServer.fromFd(fd, { acceptBudget: positive integer })');
    }
    if (reserveFd !== undefined && typeof reserveFd !== 'boolean') {
      throw new TypeError('Usage: FdServer.fromFd(fd, { reserveFd: boolean })');
    }
    const native = loadNative();
    let listening: number;
    try {
      listening = native.isListening(fd);
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    if (listening !== 1) {
      throw new FdPassError('ERR_INVALID_FD', `FdServer.fromFd: fd ${fd} is not listening`);
    }
    const kind = adoptableKind(native, fd);
    const server = new FdServer(native, fd, boundPath(native, fd), kind, null, opts, acceptBudget);
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

  get paused(): boolean {
    return this.#loop.paused;
  }

  /**
   * Stops accepting: new connections wait in the kernel's listen backlog,
   * none refused or reset (for instance while an adopted listener's owner is
   * still getting ready to serve). Idempotent.
   */
  pause(): void {
    this.#loop.pause();
  }

  resume(): void {
    this.#loop.resume();
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
      socket = wrapFd(this.#native, fd, this.#kind, this.#socketOptions, true, true);
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

  /**
   * One connection now, the rest of the round from the check phase of this
   * loop turn. The one accepted is usually answered in between (its bytes
   * are read at once, see FdSocket), so the accept that finds the backlog
   * empty no longer sits between a client's connect and its answer. A
   * burst is still taken a budget at a time, before the next poll.
   */
  #onReadable(): void {
    const accepted = this.#accepted;
    const failure = this.#loop.acceptRound(this.#take, 1);
    if (failure === null && this.#accepted !== accepted) {
      if (!this.#restScheduled && this.#loop.budget > 1) {
        this.#restScheduled = true;
        setImmediate(this.#acceptRest);
      }
      return;
    }
    this.#afterRound(failure);
  }

  readonly #acceptRest = (): void => {
    this.#restScheduled = false;
    if (this.#loop.closed || this.#loop.paused) return;
    this.#afterRound(this.#loop.acceptRound(this.#take, this.#loop.budget - 1));
  };

  #afterRound(failure: FdPassError | null): void {
    if (failure === null) return;
    // EMFILE/ENFILE: answer one waiting peer with the spare fd if we hold
    // one; otherwise report. Either way the loop backs off, then retries.
    const code: string = failure.code;
    if ((code === 'EMFILE' || code === 'ENFILE') && this.#acceptUnderPressure(code)) return;
    this.emit('error', failure);
  }

  /** An accepted connection; false ends this round. */
  #onAccepted(fd: number): boolean {
    this.#accepted++;
    if (this.#reserve === null && this.#wantsReserve) this.#takeReserve();
    let socket: FdSocket;
    try {
      socket = wrapFd(this.#native, fd, this.#kind, this.#socketOptions, true, true);
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

/** The path a listening socket is bound to ('\0'-led for an abstract name, '' when unknown). */
function boundPath(native: NativeBinding, fd: number): string {
  try {
    const decoded = native.decodeSockaddr(native.socketInfo(fd).local);
    return decoded.kind === 'unix' && decoded.path ? decoded.path.toString('utf8') : '';
  } catch {
    return '';
  }
}
