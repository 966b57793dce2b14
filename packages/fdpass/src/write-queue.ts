// The send side of an FdSocket: sends at once when nothing is queued, else
// queues the message (a copy of its bytes; duplicated or transferred fds) and
// flushes it when the socket turns writable. Owns every fd parked in the
// queue. Checking a write, the watcher and end()/shutdown stay with the socket.
import type { EventEmitter } from 'node:events';
import { errnoError, errnoName, fromNative } from './errors.js';
import { closeFdList, type FdList, packFds } from './fd-list.js';
import type { NativeBinding } from './native-loader.js';

interface QueuedWrite {
  data: Uint8Array;
  offset: number;
  /**
   * Owned by the queue (transferred or duplicated; a number may repeat when
   * the message carries one file several times); null once sent.
   */
  fds: FdList | null;
}

/** One message of FdSocket.writeBatch(). */
export interface OutgoingMessage {
  /** The message's bytes; copied if the message has to be queued. */
  readonly data: Uint8Array;
  /** Sent with the message; yours unless the batch is written with `transfer`. */
  readonly fds?: readonly number[] | Int32Array | undefined;
}

/** Messages per sendmmsg (the addon's cap). */
const BATCH_MESSAGES = 64;
/**
 * Bytes packed per sendmmsg. Batching is for small messages, whose cost is
 * the syscall; a message at least this large is sent alone, uncopied.
 */
const BATCH_BYTES = 64 * 1024;

// The packed batch handed to the addon, reused by every socket on this thread:
// each message's bytes and fds back to back, (bytes, fdCount) per message.
let batchData: Uint8Array = new Uint8Array(4096);
let batchFds = new Int32Array(256);
const batchLayout = new Int32Array(2 * BATCH_MESSAGES);

/** What only the socket can do, called back by the queue; one object serves every socket. */
export interface WriteHooks<S extends EventEmitter> {
  updateWatch(socket: S): void;
  fail(socket: S, err: Error): void;
}

/** The high-water marks: write() returns false once one is reached. */
export interface WriteLimits {
  readonly highWaterMark: number;
  readonly highWaterMessages: number;
  readonly maxFds: number;
}

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

/** Sends fds (already validated) with data[offset..]: bytes sent or -errno. */
export function sendPacked(
  native: NativeBinding,
  fd: number,
  data: Uint8Array,
  offset: number,
  fds: FdList | null,
): number {
  if (fds === null || fds.length === 0) return native.send(fd, data, offset, null, 0);
  return native.send(fd, data, offset, packFds(fds), fds.length);
}

export class WriteQueue<S extends EventEmitter> {
  readonly #socket: S;
  readonly #hooks: WriteHooks<S>;
  readonly #native: NativeBinding;
  readonly #fd: number;
  readonly #highWaterMark: number;
  readonly #highWaterMessages: number;
  readonly #maxFds: number;
  #queue: QueuedWrite[] = [];
  #queuedBytes = 0;
  #queuedFds = 0;
  #needDrain = false;
  /** The socket closed (clear() ran): nothing more is sent or queued. */
  #cleared = false;

  constructor(
    socket: S,
    hooks: WriteHooks<S>,
    native: NativeBinding,
    fd: number,
    limits: WriteLimits,
  ) {
    this.#socket = socket;
    this.#hooks = hooks;
    this.#native = native;
    this.#fd = fd;
    this.#highWaterMark = limits.highWaterMark;
    this.#highWaterMessages = limits.highWaterMessages;
    this.#maxFds = limits.maxFds;
  }

  /** Messages queued (a partly sent one counts). */
  get length(): number {
    return this.#queue.length;
  }

  /** Bytes queued, not yet accepted by the kernel. */
  get bytes(): number {
    return this.#queuedBytes;
  }

  /** fds parked in the queue (duplicated or transferred). */
  get fds(): number {
    return this.#queuedFds;
  }

  /**
   * Sends a checked message (`packed` is packFds(fds), not yet overwritten),
   * or queues it when the kernel buffer is full or writes are already
   * queued. The result is write()'s. Throws the errno code when the kernel
   * refused this message; a connection failure fails the socket instead.
   */
  write(data: Uint8Array, fds: FdList, packed: Int32Array, transfer: boolean): boolean {
    const native = this.#native;
    if (this.#queue.length === 0) {
      const n = native.send(this.#fd, data, 0, fds.length > 0 ? packed : null, fds.length);
      if (n >= 0) {
        if (transfer) closeFdList(native, fds);
        if (n === data.length) return true;
        // Partial stream write: the fds went with the first byte.
        this.#enqueue(data.subarray(n), null);
        return this.#belowHighWater();
      }
      const code = errnoName(-n);
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') {
        if (transfer) closeFdList(native, fds);
        const err = errnoError(-n, 'sendmsg');
        if (MESSAGE_ERRORS.has(code)) throw err;
        this.#hooks.fail(this.#socket, err);
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

  /**
   * Writes checked messages in order, as successive write() calls would.
   * With `batching` (SOCK_SEQPACKET), up to 64 go per sendmmsg while nothing
   * is queued; a stream sends one at a time, since a partial write followed
   * by the next message would interleave their bytes. When the kernel
   * refuses message i, its error is thrown with `messagesWritten` = i (set
   * here); with `transfer`, the fds of the messages after i are closed
   * first. Returns write()'s result for the last message; false if the
   * socket failed meanwhile.
   */
  writeBatch(messages: readonly OutgoingMessage[], transfer: boolean, batching: boolean): boolean {
    const native = this.#native;
    const n = messages.length;
    let ok = true;
    let i = 0;
    while (i < n && !this.#cleared) {
      if (batching && this.#queue.length === 0) {
        const count = packBatch(messages, i);
        const sent =
          count > 1 ? native.sendMany(this.#fd, batchData, batchLayout, batchFds, count) : 0;
        if (sent > 0) {
          if (transfer) closeSentFds(native, sent);
          i += sent;
          ok = true;
          continue;
        }
      }
      // One message through write(): it sends it alone, queues it behind a
      // full buffer or a queue, or tells a refused message (throw) from a
      // failed connection.
      const m = messages[i] as OutgoingMessage;
      const fds = m.fds ?? NO_FDS;
      if (!batching && m.data.length === 0) {
        // A zero-byte stream write sends nothing (it has no fds: checked).
        ok = this.#queue.length === 0;
      } else {
        try {
          ok = this.write(m.data, fds, packFds(fds) as Int32Array, transfer);
        } catch (err) {
          if (transfer) for (let k = i + 1; k < n; k++) closeFdList(native, messages[k]?.fds);
          if (err instanceof Error) Object.assign(err, { messagesWritten: i });
          throw err;
        }
      }
      i++;
    }
    if (i < n) {
      // The connection failed: nothing more is sent or queued.
      if (transfer) for (let k = i; k < n; k++) closeFdList(native, messages[k]?.fds);
      return false;
    }
    return ok;
  }

  /**
   * Sends from the head of the queue until it is empty or the kernel pushes
   * back. A message the kernel refuses is dropped (its fds closed) and
   * reported as 'error'; the rest carry on. Returns false when the socket
   * failed or closed meanwhile.
   */
  flush(): boolean {
    const native = this.#native;
    const socket = this.#socket;
    while (this.#queue.length > 0) {
      const head = this.#queue[0] as QueuedWrite;
      const n = sendPacked(native, this.#fd, head.data, head.offset, head.fds);
      if (n >= 0) {
        closeFdList(native, head.fds);
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
        this.#hooks.fail(this.#socket, err);
        return false;
      }
      // The kernel refused this queued message: drop it (closing its fds),
      // report it, and carry on with the next one.
      this.#queue.shift();
      closeFdList(native, head.fds);
      this.#queuedFds -= head.fds?.length ?? 0;
      this.#queuedBytes -= head.data.length - head.offset;
      socket.emit('error', err);
    }
    return true;
  }

  /** True once after a write() returned false and the queue has emptied: emit 'drain'. */
  takeDrain(): boolean {
    if (!this.#needDrain || this.#queue.length > 0) return false;
    this.#needDrain = false;
    return true;
  }

  /** Closes every fd still queued and forgets the queue (the socket is closing). */
  clear(): void {
    this.#cleared = true;
    for (const w of this.#queue) closeFdList(this.#native, w.fds);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#queuedFds = 0;
  }

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
    this.#hooks.updateWatch(this.#socket);
  }
}

const NO_FDS: readonly number[] = [];

/**
 * Packs messages[start..] into the batch scratch: up to BATCH_MESSAGES and
 * BATCH_BYTES (a larger first message alone). Returns how many it packed.
 */
function packBatch(messages: readonly OutgoingMessage[], start: number): number {
  const end = Math.min(messages.length, start + BATCH_MESSAGES);
  let bytes = 0;
  let fdTotal = 0;
  let count = 0;
  for (let i = start; i < end; i++) {
    const m = messages[i] as OutgoingMessage;
    const fds = m.fds ?? NO_FDS;
    const size = m.data.length;
    if (count > 0 && bytes + size > BATCH_BYTES) break;
    if (size >= BATCH_BYTES) return count === 0 ? 1 : count;
    if (bytes + size > batchData.length) batchData = grow(batchData, bytes + size, bytes);
    if (fdTotal + fds.length > batchFds.length) {
      const next = new Int32Array(Math.max(fdTotal + fds.length, batchFds.length * 2));
      next.set(batchFds.subarray(0, fdTotal));
      batchFds = next;
    }
    batchData.set(m.data, bytes);
    for (let k = 0; k < fds.length; k++) batchFds[fdTotal + k] = fds[k] as number;
    batchLayout[2 * count] = size;
    batchLayout[2 * count + 1] = fds.length;
    bytes += size;
    fdTotal += fds.length;
    count++;
  }
  return count;
}

/**
 * Closes the fds of the first `sent` packed messages in one native call
 * (which closes a number listed twice once): they were transferred.
 */
function closeSentFds(native: NativeBinding, sent: number): void {
  let fdCount = 0;
  for (let k = 0; k < sent; k++) fdCount += batchLayout[2 * k + 1] as number;
  if (fdCount > 0) native.closeFds(batchFds, fdCount);
}

function grow(buffer: Uint8Array, needed: number, keep: number): Uint8Array {
  const next = new Uint8Array(Math.max(needed, buffer.length * 2));
  next.set(buffer.subarray(0, keep));
  return next;
}
