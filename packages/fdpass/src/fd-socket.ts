// FdSocket: a non-blocking AF_UNIX socket that carries fds, driven by a
// uv_poll watcher on this thread's event loop. Owns the socket fd (through
// the native watcher) and its lifecycle: connect, pause, end, close. The
// receive side is message-reader.ts, the send side and the fds parked in its
// queue write-queue.ts. Accepting connections lives in fd-server.ts.
import { EventEmitter } from 'node:events';
import { errnoError, errnoName, FdPassError, fromNative } from './errors.js';
import { eventIterator } from './event-iterator.js';
import { closeFdList, type FdList, packFds } from './fd-list.js';
import { adoptableKind, connectFd, socketPairFds } from './fd-socket-open.js';
import {
  type ConnectOptions,
  defaultSocketKind,
  type FdSocketOptions,
  kindToType,
  type SocketKind,
  socketSettings,
  validateSocketOptions,
} from './fd-socket-options.js';
import { type HotConstants, hotConstants } from './hot-constants.js';
import { MessageReader, type ReaderHooks } from './message-reader.js';
import { loadNative, type NativeBinding } from './native-loader.js';
import type { ReceivedMessage } from './recv-batch.js';
import { Watcher } from './watcher.js';
import { type OutgoingMessage, sendPacked, type WriteHooks, WriteQueue } from './write-queue.js';

export interface WriteOptions {
  /**
   * Hand the fds to the socket: it closes them once sent, or when the write
   * fails, or when the socket closes with them still queued.
   */
  transfer?: boolean;
}

const NO_FDS: readonly number[] = Object.freeze([]);

/** With `transfer`, a rejected batch still owns its fds: closes a message's, if it holds a valid list. */
function closeValidFds(native: NativeBinding, m: unknown): void {
  const fds = (m as Partial<OutgoingMessage> | null)?.fds;
  if (fds !== undefined && packFds(fds) !== null) closeFdList(native, fds);
}

/** What only a socket can do, for its reader, its writer and this package's modules. */
interface SocketHooks extends ReaderHooks<FdSocket>, WriteHooks<FdSocket> {
  sendImmediately(socket: FdSocket, data: Uint8Array, fds: FdList): number;
}

/**
 * The hooks every socket shares, for sendImmediately: set once by FdSocket's
 * static block. Not a per-socket registry (a WeakMap entry per socket cost
 * ~1.5 µs of each socket's life, most of it in the GC's ephemeron work).
 */
let sharedHooks!: SocketHooks;

/**
 * Sends now or not at all: no queueing, never blocks. Returns bytes sent
 * (fewer than data.length only on a stream socket). Throws FdPassError with
 * the errno code (EAGAIN when the kernel buffer is full). For modules of this
 * package (the session forwarder); not part of the public API.
 */
export function sendImmediately(socket: FdSocket, data: Uint8Array, fds: FdList): number {
  if (!(socket instanceof FdSocket)) {
    throw new TypeError('Usage: sendImmediately(socket: FdSocket, data, fds)');
  }
  return sharedHooks.sendImmediately(socket, data, fds);
}

/** The signature of FdSocket's private constructor, for wrapFd alone. */
type FdSocketConstructor = new (
  native: NativeBinding,
  fd: number,
  kind: SocketKind,
  opts: FdSocketOptions | undefined,
  fresh: boolean,
  accepted: boolean,
) => FdSocket;

/**
 * A settled promise whose then() queues a microtask: what queueMicrotask
 * does, without the AsyncResource and bound function Node makes for each
 * call, which every accepted connection paid for.
 */
const SETTLED = Promise.resolve();

function rethrow(err: unknown): never {
  throw err;
}

/**
 * Wraps an fd whose kind is already known; on a throw the caller still owns
 * fd. Internal (FdServer and FdSocket's factories use it): the constructor is
 * private to keep it out of the public API, and this is its one door.
 * `fresh`: fdpass just made fd (accept4, socketpair, connect), so it is
 * watched through the shared epoll set (see NativeBinding.watch); never for
 * an adopted fd, which may be blocking or watched by Node already.
 * `accepted`: fd came from accept4 on a listener, and its first read is
 * tried before it is watched (see #startReading).
 */
export function wrapFd(
  native: NativeBinding,
  fd: number,
  kind: SocketKind,
  opts: FdSocketOptions | undefined,
  fresh = false,
  accepted = false,
): FdSocket {
  // An addon older than this file has no shared set (and takes 2 arguments).
  const shared = fresh && native.nestedPollStats !== undefined;
  return new (FdSocket as unknown as FdSocketConstructor)(native, fd, kind, opts, shared, accepted);
}

export class FdSocket extends EventEmitter {
  /** One object for every socket, handed explicitly to each reader and writer. */
  static readonly #hooks: SocketHooks = {
    updateWatch: (socket) => socket.#updateWatch(),
    fail: (socket, err) => socket.#fail(err),
    eof: (socket) => socket.#afterEof(),
    sendImmediately: (socket, data, fds) => socket.#sendImmediately(data, fds),
  };

  static {
    sharedHooks = FdSocket.#hooks;
  }

  readonly #native: NativeBinding;
  readonly #k: HotConstants;
  readonly #watcher: Watcher;
  readonly #fd: number;
  readonly #kind: SocketKind;
  readonly #maxFds: number;
  readonly #budget: number;
  readonly #allowHalfOpen: boolean;
  readonly #reader: MessageReader<FdSocket>;
  readonly #writer: WriteQueue<FdSocket>;

  #paused = false;
  /** Accepted and not read yet: #startReading tries a read before watching. */
  #readFirst: boolean;
  /** After that first read, until the check phase: the watch is left as it is. */
  #watchDeferred = false;
  #ending = false;
  #writeEnded = false;
  #closed = false;
  #eofEmitted = false;
  #events = 0;
  #connectWaiter: ((err: Error | null) => void) | null = null;

  /** Creates a connected pair (socketpair). Default kind: 'seqpacket' on Linux. */
  static pair(kind: SocketKind = defaultSocketKind, opts?: FdSocketOptions): [FdSocket, FdSocket] {
    validateSocketOptions(opts, 'FdSocket.pair(kind, opts)');
    const native = loadNative();
    const type = kindToType(native, kind);
    const [a, b] = socketPairFds(native, type);
    let first: FdSocket | undefined;
    try {
      first = wrapFd(native, a, kind, opts, true);
    } catch (err) {
      closeFdList(native, [a, b]);
      throw err;
    }
    try {
      return [first, wrapFd(native, b, kind, opts, true)];
    } catch (err) {
      first.close();
      native.closeFd(b);
      throw err;
    }
  }

  /**
   * Connects to a listening AF_UNIX socket. A full backlog (EAGAIN) is
   * retried with a short backoff until it succeeds or `signal` aborts;
   * other failures (ENOENT, ECONNREFUSED, …) reject at once.
   */
  static async connect(path: string, opts: ConnectOptions = {}): Promise<FdSocket> {
    if (typeof path !== 'string' || path.length === 0) {
      throw new TypeError('Usage: FdSocket.connect(path: string, opts?)');
    }
    validateSocketOptions(opts, 'FdSocket.connect(path, opts)');
    const native = loadNative();
    const kind = opts.kind ?? defaultSocketKind;
    const type = kindToType(native, kind);
    const { signal } = opts;
    const [fd, inProgress] = await connectFd(native, path, type, signal);
    let socket: FdSocket;
    try {
      socket = wrapFd(native, fd, kind, opts, true);
    } catch (err) {
      native.closeFd(fd);
      throw err;
    }
    if (inProgress) {
      try {
        await socket.#waitConnected(signal);
      } catch (err) {
        socket.close();
        throw err;
      }
    }
    return socket;
  }

  /**
   * Takes ownership of a connected AF_UNIX socket fd (for instance one
   * received in a message). The kind comes from SO_TYPE. On failure the
   * caller still owns fd.
   */
  static adopt(fd: number, opts?: FdSocketOptions): FdSocket {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError('Usage: FdSocket.adopt(fd, opts?)');
    validateSocketOptions(opts, 'FdSocket.adopt(fd, opts)');
    const native = loadNative();
    return wrapFd(native, fd, adoptableKind(native, fd), opts);
  }

  private constructor(
    native: NativeBinding,
    fd: number,
    kind: SocketKind,
    opts: FdSocketOptions | undefined,
    fresh: boolean,
    accepted: boolean,
  ) {
    super();
    this.#readFirst = accepted;
    try {
      const onPoll = (status: number, events: number) => this.#onPoll(status, events);
      this.#watcher = new Watcher(native, fd, onPoll, fresh);
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    const settings = socketSettings(kind, opts);
    this.#native = native;
    this.#k = hotConstants(native);
    this.#fd = fd;
    this.#kind = kind;
    this.#maxFds = settings.maxFds;
    this.#budget = settings.budget;
    this.#allowHalfOpen = settings.allowHalfOpen;
    const hooks = FdSocket.#hooks;
    this.#reader = new MessageReader(
      this,
      hooks,
      native,
      fd,
      kind,
      settings.maxFds,
      settings.maxBytes,
    );
    this.#writer = new WriteQueue(this, hooks, native, fd, settings);
  }

  // Reading follows interest: it starts when the first 'message' listener is
  // added and stops when the last goes, so no message (and none of its fds)
  // is ever read with nobody to hand it to. Seen by overriding the methods
  // that add and remove listeners (once() and prependOnceListener() go
  // through on() and prependListener()), not by listening to this socket's
  // own 'newListener' and 'removeListener': with those, every listener any
  // caller adds is announced by an emit, and a broker adds four per client.

  // biome-ignore-start lint/suspicious/noExplicitAny: EventEmitter's own signatures, overridden
  /** As EventEmitter's; the first 'message' listener starts reading. */
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    if (event === 'message') this.#messageListenerAdded();
    return this;
  }

  /** As on(). */
  override addListener(event: string | symbol, listener: (...args: any[]) => void): this {
    return this.on(event, listener);
  }

  /** As EventEmitter's; the first 'message' listener starts reading. */
  override prependListener(event: string | symbol, listener: (...args: any[]) => void): this {
    super.prependListener(event, listener);
    if (event === 'message') this.#messageListenerAdded();
    return this;
  }

  /** As EventEmitter's; with the last 'message' listener gone, reading stops. */
  override removeListener(event: string | symbol, listener: (...args: any[]) => void): this {
    super.removeListener(event, listener);
    if (event === 'message') this.#updateWatch();
    return this;
  }

  /** As removeListener(). */
  override off(event: string | symbol, listener: (...args: any[]) => void): this {
    return this.removeListener(event, listener);
  }

  /** As EventEmitter's; with no 'message' listener left, reading stops. */
  override removeAllListeners(...event: [] | [string | symbol | undefined]): this {
    // Node tells "all events" from "the event named undefined" by the
    // argument count, so it gets exactly the arguments given.
    super.removeAllListeners(...event);
    if (event.length === 0 || event[0] === 'message') this.#updateWatch();
    return this;
  }
  // biome-ignore-end lint/suspicious/noExplicitAny: EventEmitter's own signatures, overridden

  /** A 'message' listener came: reading starts in a microtask, after the caller's synchronous setup. */
  #messageListenerAdded(): void {
    void SETTLED.then(() => {
      // A 'message' listener may throw from inside the first read: an
      // uncaught exception, as from queueMicrotask or any later read, not a
      // rejection of a promise nobody sees.
      try {
        this.#startReading();
      } catch (err) {
        process.nextTick(rethrow, err);
      }
    });
  }

  /** The socket's fd, owned by this object; -1 once closed. Borrow only. */
  get fd(): number {
    return this.#closed ? -1 : this.#fd;
  }

  get kind(): SocketKind {
    return this.#kind;
  }

  get maxFdsPerMessage(): number {
    return this.#maxFds;
  }

  /** Bytes queued for writing (not yet accepted by the kernel). */
  get writableLength(): number {
    return this.#writer.bytes;
  }

  /** fds parked in the write queue (duplicated or transferred). */
  get writableFds(): number {
    return this.#writer.fds;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Sends data with fds (an array or an Int32Array) in one sendmsg. Returns
   * false when the write had to be queued and the queue reached a high-water
   * mark (bytes, messages or fds): wait for 'drain'. The caller keeps its
   * fds unless `transfer` is set (queued copies are duplicated with
   * F_DUPFD_CLOEXEC, one per distinct fd, so the caller may close or reuse
   * its fds as soon as this returns). Throws FdPassError before any syscall for ERR_TOO_MANY_FDS,
   * ERR_SOCKET_CLOSED and ERR_FDS_NEED_DATA; throws the errno code (EMSGSIZE,
   * ETOOMANYREFS, EMFILE, EBADF…) when the kernel refused this message.
   * Connection failures (EPIPE, ECONNRESET) are emitted as 'error' and close
   * the socket.
   */
  write(
    data: Uint8Array,
    fds: readonly number[] | Int32Array = NO_FDS,
    opts?: WriteOptions,
  ): boolean {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        'Usage: socket.write(data: Uint8Array, fds?: number[] | Int32Array, opts?)',
      );
    }
    const packed = packFds(fds);
    if (packed === null) {
      throw new TypeError(
        'Usage: socket.write(data, fds: non-negative integer fds (number[] or Int32Array), opts?)',
      );
    }
    const transfer = opts?.transfer === true;
    const native = this.#native;
    if (this.#closed || this.#ending) {
      if (transfer) closeFdList(native, fds);
      throw new FdPassError('ERR_SOCKET_CLOSED', 'write after end() or close()');
    }
    if (fds.length > this.#maxFds) {
      if (transfer) closeFdList(native, fds);
      throw new FdPassError(
        'ERR_TOO_MANY_FDS',
        `${fds.length} fds in one message exceeds the limit of ${this.#maxFds}`,
      );
    }
    if (this.#kind === 'stream' && data.length === 0) {
      if (fds.length > 0) {
        // A zero-byte sendmsg on a stream socket sends nothing, and the
        // kernel would silently drop the fds with it.
        if (transfer) closeFdList(native, fds);
        throw new FdPassError('ERR_FDS_NEED_DATA', 'fds on a stream socket need at least 1 byte');
      }
      return this.#writer.length === 0;
    }
    // `packed` still holds fds: nothing has packed another list since.
    return this.#writer.write(data, fds, packed, transfer);
  }

  /**
   * Writes messages in order, exactly as calling write() for each would, but
   * on a seqpacket socket sends up to 64 of them per sendmmsg: one syscall
   * per batch instead of one per message, for many small messages. Every
   * message is checked before anything is sent, with write()'s errors.
   * When the kernel refuses a message, the error thrown (its errno code, as
   * write() throws) carries `messagesWritten`: those before it were sent or
   * queued, none after it was written. With `transfer`, the socket owns the
   * fds of every message, written or not. Returns what write() returned for
   * the last message.
   */
  writeBatch(messages: readonly OutgoingMessage[], opts?: WriteOptions): boolean {
    if (!Array.isArray(messages)) {
      throw new TypeError(
        'Usage: socket.writeBatch(messages: { data: Uint8Array, fds?: number[] | Int32Array }[], opts?)',
      );
    }
    const transfer = opts?.transfer === true;
    const problem = this.#checkBatch(messages);
    if (problem !== null) {
      if (transfer) for (const m of messages) closeValidFds(this.#native, m);
      throw problem;
    }
    return this.#writer.writeBatch(messages, transfer, this.#kind === 'seqpacket');
  }

  /** write()'s checks for every message of a batch: the error to throw, or null. */
  #checkBatch(messages: readonly unknown[]): Error | null {
    if (this.#closed || this.#ending) {
      return new FdPassError('ERR_SOCKET_CLOSED', 'write after end() or close()');
    }
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as Partial<OutgoingMessage> | null;
      const fds = m?.fds ?? NO_FDS;
      if (m === null || typeof m !== 'object' || !(m.data instanceof Uint8Array)) {
        return new TypeError(
          `Usage: socket.writeBatch(messages): messages[${i}].data must be a Uint8Array`,
        );
      }
      if (packFds(fds) === null) {
        return new TypeError(
          `Usage: socket.writeBatch(messages): messages[${i}].fds must be non-negative integer fds`,
        );
      }
      if (fds.length > this.#maxFds) {
        return new FdPassError(
          'ERR_TOO_MANY_FDS',
          `messages[${i}]: ${fds.length} fds in one message exceeds the limit of ${this.#maxFds}`,
        );
      }
      if (this.#kind === 'stream' && m.data.length === 0 && fds.length > 0) {
        return new FdPassError(
          'ERR_FDS_NEED_DATA',
          `messages[${i}]: fds on a stream socket need at least 1 byte`,
        );
      }
    }
    return null;
  }

  /** Stops reading; messages already read wait in memory until resume(). */
  pause(): void {
    this.#paused = true;
    this.#updateWatch();
  }

  resume(): void {
    this.#paused = false;
    this.#reader.resume();
    this.#updateWatch();
  }

  /** Half-closes: shutdown(SHUT_WR) once queued writes have flushed. */
  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    if (this.#writer.length === 0) this.#shutdown();
  }

  /**
   * Closes the socket at once. Idempotent. fds still queued for writing and
   * received messages not yet emitted are closed too; 'close' follows on the
   * next tick.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    this.#writer.clear();
    this.#reader.discard();
    const waiter = this.#connectWaiter;
    this.#connectWaiter = null;
    waiter?.(new FdPassError('ERR_SOCKET_CLOSED', 'socket closed while connecting'));
    process.nextTick(() => this.emit('close'));
  }

  /** Like net.Socket#ref/unref: whether this socket keeps the loop alive. */
  ref(): this {
    if (!this.#closed) this.#watcher.setRef(true);
    return this;
  }

  unref(): this {
    if (!this.#closed) this.#watcher.setRef(false);
    return this;
  }

  /**
   * Messages as an async iterator. Buffers up to 64 messages, pausing the
   * socket beyond that. Ends on 'end'; throws the first 'error'. Leaving the
   * loop early (break/return/throw) closes the socket and any fds of
   * messages buffered but not yet handed out.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<ReceivedMessage> {
    return eventIterator<ReceivedMessage>(this, 'message', (m) => {
      closeFdList(this.#native, m.fds);
    });
  }

  // --- internals -----------------------------------------------------------

  #sendImmediately(data: Uint8Array, fds: FdList): number {
    if (this.#closed || this.#ending) {
      throw new FdPassError('ERR_SOCKET_CLOSED', 'send on a closed socket');
    }
    if (this.#writer.length > 0) {
      throw errnoError(this.#native.constants.EAGAIN, 'sendmsg', '(writes already queued)');
    }
    const n = sendPacked(this.#native, this.#fd, data, 0, fds);
    if (n < 0) throw errnoError(-n, 'sendmsg');
    return n;
  }

  /**
   * Reading begins. On an accepted socket the first read is tried at once:
   * clients usually write with their connect (a Hello, a first request), so
   * the bytes are often in before anyone asks epoll, which saves a wake-up.
   * The watch then waits for the check phase of this loop turn, still
   * before the next poll, so nothing arrives unseen: by then the answer has
   * often closed the connection (an await or two after the read), and
   * neither the watch nor the unwatch is made. Nothing there costs one recv
   * that finds EAGAIN.
   */
  #startReading(): void {
    if (!this.#readFirst) {
      this.#updateWatch();
      return;
    }
    this.#readFirst = false;
    this.#watchDeferred = true;
    if (!this.#closed && this.#reader.wantRead()) this.#reader.readBatch(this.#budget);
    if (this.#closed) return;
    setImmediate(() => {
      this.#watchDeferred = false;
      this.#updateWatch();
    });
  }

  #updateWatch(): void {
    if (this.#closed || this.#watchDeferred) return;
    const { UV_READABLE, UV_WRITABLE } = this.#k;
    let mask = 0;
    if (this.#reader.wantRead()) mask |= UV_READABLE;
    if (this.#writer.length > 0 || this.#connectWaiter !== null) mask |= UV_WRITABLE;
    if (mask === this.#events) return;
    const rc = this.#watcher.setEvents(mask);
    if (rc < 0) {
      this.#fail(errnoError(-rc, 'uv_poll_start'));
      return;
    }
    this.#events = mask;
  }

  #onPoll(status: number, events: number): void {
    if (this.#closed) return;
    const { UV_READABLE, UV_WRITABLE } = this.#k;
    if (status < 0) {
      // libuv reports POLLERR as an error and stops the handle. Whatever is
      // still queued for reading is delivered first; SO_ERROR then names the
      // real cause (usually ECONNRESET).
      this.#events = 0;
      if (this.#connectWaiter) {
        this.#finishConnect();
        return;
      }
      if (this.#reader.wantRead()) this.#reader.readBatch(Number.POSITIVE_INFINITY);
      if (this.#closed) return;
      const soError = this.#native.socketError(this.#fd);
      this.#fail(errnoError(soError > 0 ? soError : -status, 'poll'));
      return;
    }
    if (events & UV_WRITABLE) {
      if (this.#connectWaiter) this.#finishConnect();
      else this.#flush();
    }
    if (events & UV_READABLE && this.#reader.wantRead()) this.#reader.readBatch(this.#budget);
  }

  /** The reader saw end-of-file and emitted every message before it. */
  #afterEof(): void {
    if (this.#eofEmitted) return;
    this.#eofEmitted = true;
    this.emit('end');
    if (this.#closed) return;
    if (!this.#allowHalfOpen) this.end();
    if (this.#writeEnded) this.close();
  }

  #flush(): void {
    if (!this.#writer.flush() || this.#closed) return;
    this.#updateWatch();
    if (this.#writer.length === 0) {
      if (this.#writer.takeDrain()) this.emit('drain');
      if (this.#ending && !this.#writeEnded && !this.#closed) this.#shutdown();
    }
  }

  #shutdown(): void {
    const rc = this.#native.shutdownWrite(this.#fd);
    this.#writeEnded = true;
    if (rc < 0 && errnoName(-rc) !== 'ENOTCONN') {
      this.#fail(errnoError(-rc, 'shutdown'));
      return;
    }
    if (this.#reader.readEnded && this.#eofEmitted) this.close();
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    process.nextTick(() => this.emit('error', err));
    this.close();
  }

  #waitConnected(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#connectWaiter = null;
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#connectWaiter = (err) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      this.#updateWatch();
    });
  }

  #finishConnect(): void {
    const waiter = this.#connectWaiter;
    this.#connectWaiter = null;
    const soError = this.#native.socketError(this.#fd);
    this.#updateWatch();
    waiter?.(soError === 0 ? null : errnoError(Math.abs(soError), 'connect'));
  }
}
