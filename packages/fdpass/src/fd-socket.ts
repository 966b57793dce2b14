// FdSocket: a non-blocking AF_UNIX socket that carries fds, driven by a
// uv_poll watcher on this thread's event loop. Owns the socket fd (through
// the native watcher), the write queue and every fd parked in it. Accepting
// connections lives in fd-server.ts; Node object interop in node-interop.ts.
import { EventEmitter } from 'node:events';
import { errnoError, errnoName, FdPassError, fromNative } from './errors.js';
import { closeFdList, type FdList, packFds } from './fd-list.js';
import { loadNative, type NativeBinding, type NativeWatcher } from './native-loader.js';

export type SocketKind = 'stream' | 'seqpacket';

export interface ReceivedMessage {
  data: Buffer;
  /** Now owned by the receiver: close them (closeFd) or adopt them. */
  fds: number[];
}

export interface FdSocketOptions {
  /** Per-message fd limit for both directions, 0..253 (default 253). */
  maxFdsPerMessage?: number;
  /**
   * Largest message read at once (default 256 KiB for seqpacket, 64 KiB for
   * stream). A longer SEQPACKET message is reported as ERR_DATA_TRUNCATED;
   * on a stream it is simply delivered over several 'message' events.
   */
  maxMessageSize?: number;
  /** Messages read per readiness event before yielding to the loop (default 64). */
  readBudget?: number;
  /** Keep the writing side open after the peer ends (default false). */
  allowHalfOpen?: boolean;
  /** write() returns false once this many bytes are queued (default 16 KiB). */
  highWaterMark?: number;
  /**
   * write() returns false once this many messages are queued (default 16).
   * Each queued message holds a duplicate of every fd it carries, and the
   * kernel's own buffer is the real one, so a short user-space queue is
   * cheaper than a long one, even of tiny messages.
   */
  highWaterMessages?: number;
}

export interface ConnectOptions extends FdSocketOptions {
  kind?: SocketKind;
  signal?: AbortSignal;
}

export interface WriteOptions {
  /**
   * Hand the fds to the socket: it closes them once sent, or when the write
   * fails, or when the socket closes with them still queued.
   */
  transfer?: boolean;
}

interface QueuedWrite {
  data: Uint8Array;
  offset: number;
  /**
   * Owned by the queue (transferred or duplicated; a number may repeat when
   * the message carries one file several times); null once sent.
   */
  fds: FdList | null;
}

/** A message the addon received and rejected; its fds are already closed. */
class RejectedMessage {
  constructor(
    readonly code: string,
    readonly fdCount: number,
    readonly bytes: number,
    /** Delivered without fds on a stream (the byte stream stays intact). */
    readonly data: Buffer,
  ) {}
}

/** A platform default: Linux keeps message boundaries with SEQPACKET. */
export const defaultSocketKind: SocketKind = process.platform === 'linux' ? 'seqpacket' : 'stream';

// Failures that concern one message, not the connection: the socket stays
// usable and the caller may retry differently (fewer fds, smaller data).
const MESSAGE_ERRORS = new Set([
  'EMSGSIZE',
  'ETOOMANYREFS',
  'EMFILE',
  'ENFILE',
  'ENOBUFS',
  'ENOMEM',
  'EINVAL',
  'EBADF',
]);

const DEFAULT_HIGH_WATER_MARK = 16 * 1024;
const DEFAULT_HIGH_WATER_MESSAGES = 16;
const DEFAULT_READ_BUDGET = 64;
const ITERATOR_HIGH_WATER = 64;
/** Messages per native recv call (the addon batches them with recvmmsg). */
const RECV_BATCH = 64;
/**
 * Received messages share one buffer per batch (`data` is a view) when the
 * batch is this small, or when the message is at least half of it, so a kept
 * message never pins much more than itself.
 */
const SHARED_BATCH_BYTES = 64 * 1024;
const NO_FDS: readonly number[] = Object.freeze([]);

/** The constants read on every event, copied into a small object with fast properties. */
interface HotConstants {
  readonly UV_READABLE: number;
  readonly UV_WRITABLE: number;
  readonly BATCH_EOF: number;
  readonly BATCH_BUDGET: number;
  readonly RECV_OK: number;
}

let hot: HotConstants | undefined;

function hotConstants(native: NativeBinding): HotConstants {
  if (hot === undefined) {
    const c = native.constants;
    hot = {
      UV_READABLE: c.UV_READABLE,
      UV_WRITABLE: c.UV_WRITABLE,
      BATCH_EOF: c.BATCH_EOF,
      BATCH_BUDGET: c.BATCH_BUDGET,
      RECV_OK: c.RECV_OK,
    };
  }
  return hot;
}

/** recv records, shared by the sockets of this realm: decoded right after each call. */
let records: Int32Array | undefined;

function recordsArray(): Int32Array {
  // Header, then RECV_BATCH entries of (code, bytes, fdCount, 253 fds).
  records ??= new Int32Array(2 + RECV_BATCH * (3 + 253));
  return records;
}

export function kindToType(native: NativeBinding, kind: SocketKind): number {
  if (kind === 'stream') return native.constants.SOCK_STREAM;
  if (kind === 'seqpacket') return native.constants.SOCK_SEQPACKET;
  throw new TypeError(`Usage: kind must be 'stream' or 'seqpacket', got ${String(kind)}`);
}

export function validateSocketOptions(opts: FdSocketOptions | undefined, where: string): void {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null) {
    throw new TypeError(`Usage: ${where}: options must be an object`);
  }
  const m = opts.maxFdsPerMessage;
  if (m !== undefined && (!Number.isInteger(m) || m < 0 || m > 253)) {
    throw new TypeError(`Usage: ${where}: maxFdsPerMessage must be an integer 0..253`);
  }
  for (const key of ['maxMessageSize', 'readBudget'] as const) {
    const v = opts[key];
    if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > 2 ** 26)) {
      throw new TypeError(`Usage: ${where}: ${key} must be an integer 1..2^26`);
    }
  }
  for (const key of ['highWaterMark', 'highWaterMessages'] as const) {
    const h = opts[key];
    if (h !== undefined && (!Number.isInteger(h) || h < 0)) {
      throw new TypeError(`Usage: ${where}: ${key} must be a non-negative integer`);
    }
  }
}

/** Closes each distinct fd once, in one native call. */
function closeAll(native: NativeBinding, fds: FdList | null | undefined): void {
  closeFdList(native, fds);
}

/** Sends fds (already validated) with data[offset..]: bytes sent or -errno. */
function sendPacked(
  native: NativeBinding,
  fd: number,
  data: Uint8Array,
  offset: number,
  fds: FdList | null,
): number {
  if (fds === null || fds.length === 0) return native.send(fd, data, offset, null, 0);
  return native.send(fd, data, offset, packFds(fds), fds.length);
}

/**
 * Sends now or not at all: no queueing, never blocks. Returns bytes sent
 * (fewer than data.length only on a stream socket). Throws FdPassError with
 * the errno code (EAGAIN when the kernel buffer is full). For modules of this
 * package (the session forwarder); not part of the public API.
 */
export let sendImmediately: (socket: FdSocket, data: Uint8Array, fds: FdList) => number;

/** Wraps an fd whose kind is already known. Internal (FdServer uses it). */
export let wrapFd: (
  native: NativeBinding,
  fd: number,
  kind: SocketKind,
  opts: FdSocketOptions | undefined,
) => FdSocket;

export class FdSocket extends EventEmitter {
  static {
    sendImmediately = (socket, data, fds) => socket.#sendImmediately(data, fds);
    wrapFd = (native, fd, kind, opts) => new FdSocket(native, fd, kind, opts);
  }

  readonly #native: NativeBinding;
  readonly #k: HotConstants;
  readonly #watcher: NativeWatcher;
  readonly #fd: number;
  readonly #kind: SocketKind;
  readonly #maxFds: number;
  readonly #maxBytes: number;
  readonly #budget: number;
  readonly #allowHalfOpen: boolean;
  readonly #highWaterMark: number;
  readonly #highWaterMessages: number;

  #queue: QueuedWrite[] = [];
  #queuedBytes = 0;
  #queuedFds = 0;
  #needDrain = false;
  /** Messages read from the kernel but not yet emitted (pause mid-batch). */
  #backlog: ReceivedMessage[] = [];
  #backlogScheduled = false;
  #paused = false;
  #readEnded = false;
  #ending = false;
  #writeEnded = false;
  #closed = false;
  #events = 0;
  #connectWaiter: ((err: Error | null) => void) | null = null;

  /** Creates a connected pair (socketpair). Default kind: 'seqpacket' on Linux. */
  static pair(kind: SocketKind = defaultSocketKind, opts?: FdSocketOptions): [FdSocket, FdSocket] {
    validateSocketOptions(opts, 'FdSocket.pair(kind, opts)');
    const native = loadNative();
    const type = kindToType(native, kind);
    let fds: [number, number];
    try {
      fds = native.socketPair(type);
    } catch (err) {
      throw fromNative(err);
    }
    const [a, b] = fds;
    let first: FdSocket | undefined;
    try {
      first = wrapFd(native, a, kind, opts);
    } catch (err) {
      closeFdList(native, [a, b]);
      throw err;
    }
    try {
      return [first, wrapFd(native, b, kind, opts)];
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
    let backoffMs = 1;
    for (;;) {
      signal?.throwIfAborted();
      let result: [number, boolean];
      try {
        result = native.connect(path, type);
      } catch (err) {
        const e = fromNative(err, path);
        if ((e as FdPassError).code === 'EAGAIN') {
          await abortableDelay(backoffMs, signal);
          backoffMs = Math.min(backoffMs * 2, 50);
          continue;
        }
        throw e;
      }
      const [fd, inProgress] = result;
      let socket: FdSocket;
      try {
        socket = wrapFd(native, fd, kind, opts);
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
    let family: number;
    let type: number;
    try {
      family = native.socketFamily(fd);
      type = native.socketType(fd);
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    const { AF_UNIX, SOCK_STREAM, SOCK_SEQPACKET } = native.constants;
    if (family !== AF_UNIX || (type !== SOCK_STREAM && type !== SOCK_SEQPACKET)) {
      throw new FdPassError(
        'ERR_INVALID_FD',
        `fd ${fd} is not an AF_UNIX stream or seqpacket socket (family ${family}, type ${type})`,
      );
    }
    try {
      native.setNonBlocking(fd);
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    return wrapFd(native, fd, type === SOCK_STREAM ? 'stream' : 'seqpacket', opts);
  }

  private constructor(
    native: NativeBinding,
    fd: number,
    kind: SocketKind,
    opts: FdSocketOptions | undefined,
  ) {
    super();
    try {
      this.#watcher = new native.Watcher(fd, (status, events) => this.#onPoll(status, events));
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    this.#native = native;
    this.#k = hotConstants(native);
    this.#fd = fd;
    this.#kind = kind;
    this.#maxFds = opts?.maxFdsPerMessage ?? 253;
    this.#maxBytes = opts?.maxMessageSize ?? (kind === 'seqpacket' ? 256 * 1024 : 64 * 1024);
    this.#budget = opts?.readBudget ?? DEFAULT_READ_BUDGET;
    this.#allowHalfOpen = opts?.allowHalfOpen ?? false;
    this.#highWaterMark = opts?.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.#highWaterMessages = opts?.highWaterMessages ?? DEFAULT_HIGH_WATER_MESSAGES;
    // Reading follows interest: it starts when the first 'message' listener
    // is added and stops when the last goes, so no message (and none of its
    // fds) is ever read with nobody to hand it to.
    this.on('newListener', (event) => {
      if (event === 'message') queueMicrotask(() => this.#updateWatch());
    });
    this.on('removeListener', (event) => {
      if (event === 'message') this.#updateWatch();
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
    return this.#queuedBytes;
  }

  /** fds parked in the write queue (duplicated or transferred). */
  get writableFds(): number {
    return this.#queuedFds;
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
      if (transfer) closeAll(native, fds);
      throw new FdPassError('ERR_SOCKET_CLOSED', 'write after end() or close()');
    }
    if (fds.length > this.#maxFds) {
      if (transfer) closeAll(native, fds);
      throw new FdPassError(
        'ERR_TOO_MANY_FDS',
        `${fds.length} fds in one message exceeds the limit of ${this.#maxFds}`,
      );
    }
    if (this.#kind === 'stream' && data.length === 0) {
      if (fds.length > 0) {
        // A zero-byte sendmsg on a stream socket sends nothing, and the
        // kernel would silently drop the fds with it.
        if (transfer) closeAll(native, fds);
        throw new FdPassError('ERR_FDS_NEED_DATA', 'fds on a stream socket need at least 1 byte');
      }
      return this.#queue.length === 0;
    }
    if (this.#queue.length === 0) {
      // `packed` still holds fds: nothing has packed another list since.
      const n = native.send(this.#fd, data, 0, fds.length > 0 ? packed : null, fds.length);
      if (n >= 0) {
        if (transfer) closeAll(native, fds);
        if (n === data.length) return true;
        // Partial stream write: the fds went with the first byte.
        this.#enqueue(data.subarray(n), null);
        return this.#belowHighWater();
      }
      const code = errnoName(-n);
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') {
        if (transfer) closeAll(native, fds);
        const err = errnoError(-n, 'sendmsg');
        if (MESSAGE_ERRORS.has(code)) throw err;
        this.#fail(err);
        return false;
      }
    }
    let owned: FdList | null = null;
    if (fds.length > 0) {
      owned = transfer ? fds.slice() : this.#duplicate(fds);
    }
    this.#enqueue(data, owned);
    return this.#belowHighWater();
  }

  /** Stops reading; messages already read wait in memory until resume(). */
  pause(): void {
    this.#paused = true;
    this.#updateWatch();
  }

  resume(): void {
    this.#paused = false;
    if (this.#backlog.length > 0) this.#scheduleBacklog();
    this.#updateWatch();
  }

  /** Half-closes: shutdown(SHUT_WR) once queued writes have flushed. */
  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    if (this.#queue.length === 0) this.#shutdown();
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
    for (const w of this.#queue) closeAll(this.#native, w.fds);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#queuedFds = 0;
    for (const m of this.#backlog) closeAll(this.#native, m.fds);
    this.#backlog = [];
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
    return messageIterator(this);
  }

  // --- internals -----------------------------------------------------------

  #belowHighWater(): boolean {
    const ok =
      this.#queuedBytes < this.#highWaterMark &&
      this.#queue.length < this.#highWaterMessages &&
      this.#queuedFds <= this.#maxFds;
    if (!ok) this.#needDrain = true;
    return ok;
  }

  /** One duplicate per distinct fd, made (and undone on failure) natively. */
  #duplicate(fds: FdList): Int32Array {
    try {
      return this.#native.dupFds(packFds(fds) as Int32Array, fds.length);
    } catch (err) {
      throw fromNative(err, 'while queueing fds');
    }
  }

  #enqueue(data: Uint8Array, fds: FdList | null): void {
    // Copy: the caller may reuse its buffer as soon as write() returns.
    const copy = Uint8Array.prototype.slice.call(data);
    this.#queue.push({ data: copy, offset: 0, fds });
    this.#queuedBytes += copy.length;
    this.#queuedFds += fds?.length ?? 0;
    this.#updateWatch();
  }

  #sendImmediately(data: Uint8Array, fds: FdList): number {
    if (this.#closed || this.#ending) {
      throw new FdPassError('ERR_SOCKET_CLOSED', 'send on a closed socket');
    }
    if (this.#queue.length > 0) {
      throw errnoError(this.#native.constants.EAGAIN, 'sendmsg', '(writes already queued)');
    }
    const n = sendPacked(this.#native, this.#fd, data, 0, fds);
    if (n < 0) throw errnoError(-n, 'sendmsg');
    return n;
  }

  #wantRead(): boolean {
    return (
      !this.#closed &&
      !this.#paused &&
      !this.#readEnded &&
      this.#backlog.length === 0 &&
      this.listenerCount('message') > 0
    );
  }

  #updateWatch(): void {
    if (this.#closed) return;
    const { UV_READABLE, UV_WRITABLE } = this.#k;
    let mask = 0;
    if (this.#wantRead()) mask |= UV_READABLE;
    if (this.#queue.length > 0 || this.#connectWaiter !== null) mask |= UV_WRITABLE;
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
      if (this.#wantRead()) this.#readBatch(Number.POSITIVE_INFINITY);
      if (this.#closed) return;
      const soError = this.#native.socketError(this.#fd);
      this.#fail(errnoError(soError > 0 ? soError : -status, 'poll'));
      return;
    }
    if (events & UV_WRITABLE) {
      if (this.#connectWaiter) this.#finishConnect();
      else this.#flush();
    }
    if (events & UV_READABLE && this.#wantRead()) this.#readBatch(this.#budget);
  }

  #readBatch(budget: number): void {
    const native = this.#native;
    const { BATCH_EOF, BATCH_BUDGET } = this.#k;
    const recs = recordsArray();
    let remaining = budget;
    for (;;) {
      const data = native.recv(
        this.#fd,
        recs,
        Math.min(remaining, RECV_BATCH),
        this.#maxFds,
        this.#maxBytes,
        this.#kind === 'seqpacket',
      );
      const status = recs[0] as number;
      const count = recs[1] as number;
      remaining -= count;
      // Decode before any listener runs: the records array is shared.
      this.#deliver(this.#decode(recs, count, data));
      if (this.#closed) return;
      if (status === BATCH_EOF) {
        this.#onEof();
        return;
      }
      if (status < 0) {
        this.#fail(errnoError(-status, 'recvmsg'));
        return;
      }
      // BATCH_DRAINED: the kernel queue is empty. BATCH_BUDGET: yield to the
      // loop; level-triggered polling brings us back. Only the error path
      // (budget Infinity) keeps reading until drained.
      if (status !== BATCH_BUDGET || remaining <= 0 || !this.#wantRead()) return;
    }
  }

  /** Turns recv records into messages (data as views of the batch buffer) and rejects. */
  #decode(
    recs: Int32Array,
    count: number,
    batch: Buffer | undefined,
  ): Array<ReceivedMessage | RejectedMessage> {
    const { RECV_OK } = this.#k;
    const seqpacket = this.#kind === 'seqpacket';
    const total = batch === undefined ? 0 : batch.length;
    const out = new Array<ReceivedMessage | RejectedMessage>(count);
    let pos = 2;
    let offset = 0;
    for (let m = 0; m < count; m++) {
      const code = recs[pos] as number;
      const bytes = recs[pos + 1] as number;
      const fdCount = recs[pos + 2] as number;
      pos += 3;
      const carried = code === RECV_OK || !seqpacket ? bytes : 0;
      let data: Buffer;
      if (batch === undefined || carried === 0) {
        data = Buffer.alloc(0);
      } else if (total <= SHARED_BATCH_BYTES || carried * 2 >= total) {
        data = batch.subarray(offset, offset + carried);
      } else {
        data = Buffer.from(batch.subarray(offset, offset + carried));
      }
      offset += carried;
      if (code !== RECV_OK) {
        out[m] = new RejectedMessage(receiveCode(this.#native, code), fdCount, bytes, data);
        continue;
      }
      const fds = new Array<number>(fdCount);
      for (let k = 0; k < fdCount; k++) fds[k] = recs[pos + k] as number;
      pos += fdCount;
      out[m] = { data, fds };
    }
    return out;
  }

  /**
   * Emits a decoded batch. Whatever is left when a listener pauses, closes
   * or throws is kept in order (backlog) or, once closed, has its fds closed.
   */
  #deliver(batch: Array<ReceivedMessage | RejectedMessage>): void {
    const end = batch.length;
    let i = 0;
    try {
      for (; i < end; i++) {
        const entry = batch[i] as ReceivedMessage | RejectedMessage;
        let message: ReceivedMessage;
        if (entry instanceof RejectedMessage) {
          if (this.#closed) continue;
          this.emit('error', receiveError(entry.code, entry.fdCount, entry.bytes, this.#maxFds));
          // A SEQPACKET message is dropped whole. On a stream the bytes are
          // still delivered (without fds) so the byte stream stays intact.
          if (this.#kind !== 'stream' || entry.data.length === 0 || this.#closed) continue;
          message = { data: entry.data, fds: [] };
        } else {
          message = entry;
        }
        if (this.#closed) {
          closeAll(this.#native, message.fds);
        } else if (this.#paused || this.listenerCount('message') === 0) {
          this.#backlog.push(message);
        } else {
          this.emit('message', message);
        }
      }
    } catch (err) {
      // A listener threw: keep what was not delivered, then let the
      // exception reach 'uncaughtException' like any listener error.
      for (i++; i < end; i++) {
        const entry = batch[i] as ReceivedMessage | RejectedMessage;
        if (entry instanceof RejectedMessage) continue;
        if (this.#closed) closeAll(this.#native, entry.fds);
        else this.#backlog.push(entry);
      }
      if (this.#backlog.length > 0) this.#scheduleBacklog();
      this.#updateWatch();
      throw err;
    }
    this.#updateWatch();
  }

  #scheduleBacklog(): void {
    if (this.#backlogScheduled) return;
    this.#backlogScheduled = true;
    setImmediate(() => {
      this.#backlogScheduled = false;
      while (
        !this.#closed &&
        !this.#paused &&
        this.#backlog.length > 0 &&
        this.listenerCount('message') > 0
      ) {
        const next = this.#backlog.shift() as ReceivedMessage;
        this.emit('message', next);
      }
      if (this.#readEnded && this.#backlog.length === 0 && !this.#closed) this.#afterEof();
      this.#updateWatch();
    });
  }

  #onEof(): void {
    this.#readEnded = true;
    this.#updateWatch();
    if (this.#backlog.length > 0) {
      // 'end' must follow every message read before it.
      this.#scheduleBacklog();
      return;
    }
    this.#afterEof();
  }

  #eofEmitted = false;

  #afterEof(): void {
    if (this.#eofEmitted) return;
    this.#eofEmitted = true;
    this.emit('end');
    if (this.#closed) return;
    if (!this.#allowHalfOpen) this.end();
    if (this.#writeEnded) this.close();
  }

  #flush(): void {
    const native = this.#native;
    while (this.#queue.length > 0 && !this.#closed) {
      const head = this.#queue[0] as QueuedWrite;
      const n = sendPacked(native, this.#fd, head.data, head.offset, head.fds);
      if (n >= 0) {
        closeAll(native, head.fds);
        this.#queuedFds -= head.fds?.length ?? 0;
        head.fds = null;
        head.offset += n;
        this.#queuedBytes -= n;
        if (head.offset >= head.data.length) this.#queue.shift();
        continue;
      }
      const code = errnoName(-n);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
      const err = errnoError(-n, 'sendmsg');
      if (!MESSAGE_ERRORS.has(code)) {
        this.#fail(err);
        return;
      }
      // The kernel refused this queued message: drop it (closing its fds),
      // report it, and carry on with the next one.
      this.#queue.shift();
      closeAll(native, head.fds);
      this.#queuedFds -= head.fds?.length ?? 0;
      this.#queuedBytes -= head.data.length - head.offset;
      this.emit('error', err);
    }
    if (this.#closed) return;
    this.#updateWatch();
    if (this.#queue.length === 0) {
      if (this.#needDrain) {
        this.#needDrain = false;
        this.emit('drain');
      }
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
    if (this.#readEnded && this.#eofEmitted) this.close();
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

function receiveCode(native: NativeBinding, code: number): string {
  const { RECV_TOO_MANY_FDS, RECV_CONTROL_TRUNCATED } = native.constants;
  if (code === RECV_TOO_MANY_FDS) return 'ERR_TOO_MANY_FDS';
  if (code === RECV_CONTROL_TRUNCATED) return 'ERR_CONTROL_TRUNCATED';
  return 'ERR_DATA_TRUNCATED';
}

function receiveError(code: string, fdCount: number, bytes: number, cap: number): FdPassError {
  switch (code) {
    case 'ERR_TOO_MANY_FDS':
      return new FdPassError(
        code,
        `received a message with more than ${cap} fds; all ${fdCount} that arrived were closed`,
      );
    case 'ERR_CONTROL_TRUNCATED':
      return new FdPassError(
        code,
        `control data truncated (MSG_CTRUNC): fds were lost in the kernel; the ${fdCount} that arrived were closed`,
      );
    default:
      return new FdPassError(
        code,
        `message longer than the ${bytes}-byte receive buffer was truncated (MSG_TRUNC); its ${fdCount} fds were closed`,
      );
  }
}

function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Shared by FdSocket and SessionReceiver: events → async iterator with backpressure. */
export function eventIterator<T>(
  source: EventEmitter & { pause(): void; resume(): void; close(): void },
  event: string,
  dispose: (item: T) => void,
): AsyncIterableIterator<T> {
  const buffered: T[] = [];
  let failure: unknown = null;
  let done = false;
  let wake: (() => void) | null = null;
  let pausedByUs = false;
  const onItem = (item: T) => {
    buffered.push(item);
    if (buffered.length >= ITERATOR_HIGH_WATER && !pausedByUs) {
      pausedByUs = true;
      source.pause();
    }
    wake?.();
  };
  const onError = (err: unknown) => {
    if (failure === null) failure = err;
    wake?.();
  };
  const onEnd = () => {
    done = true;
    wake?.();
  };
  source.on(event, onItem);
  source.on('error', onError);
  source.on('end', onEnd);
  source.on('close', onEnd);
  const detach = () => {
    source.off(event, onItem);
    source.off('error', onError);
    source.off('end', onEnd);
    source.off('close', onEnd);
  };
  const finish = () => {
    detach();
    for (const item of buffered.splice(0)) dispose(item);
    source.close();
  };
  const iterator: AsyncIterableIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (buffered.length > 0) {
          const value = buffered.shift() as T;
          if (pausedByUs && buffered.length < ITERATOR_HIGH_WATER / 2) {
            pausedByUs = false;
            source.resume();
          }
          return { value, done: false };
        }
        if (failure !== null) {
          const err = failure;
          finish();
          throw err;
        }
        if (done) {
          finish();
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    },
    async return(): Promise<IteratorResult<T>> {
      finish();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

function messageIterator(socket: FdSocket): AsyncIterableIterator<ReceivedMessage> {
  return eventIterator<ReceivedMessage>(socket, 'message', (m) => {
    closeFdList(loadNative(), m.fds);
  });
}
