// The receive side of an FdSocket: reads batches from the kernel (recvmmsg in
// the addon), emits each message in order, and keeps what a pause, a close or
// a throwing listener left over — closing its fds once the socket is closed.
// The socket owns the fd and its watcher, and decides when to read.
import type { EventEmitter } from 'node:events';
import { errnoError } from './errors.js';
import { closeFdList } from './fd-list.js';
import type { SocketKind } from './fd-socket-options.js';
import { type HotConstants, hotConstants } from './hot-constants.js';
import type { NativeBinding } from './native-loader.js';
import {
  decodeBatch,
  RECV_BATCH,
  type ReceivedMessage,
  RejectedMessage,
  receiveError,
  recordsArray,
} from './recv-batch.js';

/** The socket as the reader sees it: its events and its public state. */
export interface ReaderSocket extends EventEmitter {
  readonly closed: boolean;
  readonly paused: boolean;
}

/**
 * What only the socket can do, called back by the reader. One object serves
 * every socket (it takes the socket), so a socket allocates no closures for it.
 */
export interface ReaderHooks<S extends ReaderSocket> {
  updateWatch(socket: S): void;
  fail(socket: S, err: Error): void;
  /** End-of-file, after every message read before it was emitted. */
  eof(socket: S): void;
}

export class MessageReader<S extends ReaderSocket> {
  readonly #socket: S;
  readonly #hooks: ReaderHooks<S>;
  readonly #native: NativeBinding;
  readonly #k: HotConstants;
  readonly #fd: number;
  readonly #kind: SocketKind;
  readonly #maxFds: number;
  readonly #maxBytes: number;
  /** Messages read from the kernel but not yet emitted (pause mid-batch). */
  #backlog: ReceivedMessage[] = [];
  #backlogScheduled = false;
  #readEnded = false;

  constructor(
    socket: S,
    hooks: ReaderHooks<S>,
    native: NativeBinding,
    fd: number,
    kind: SocketKind,
    maxFds: number,
    maxBytes: number,
  ) {
    this.#socket = socket;
    this.#hooks = hooks;
    this.#native = native;
    this.#k = hotConstants(native);
    this.#fd = fd;
    this.#kind = kind;
    this.#maxFds = maxFds;
    this.#maxBytes = maxBytes;
  }

  /** True once the peer's end-of-file was read. */
  get readEnded(): boolean {
    return this.#readEnded;
  }

  /** Whether to poll for readability: someone listens and nothing is held back. */
  wantRead(): boolean {
    const socket = this.#socket;
    return (
      !socket.closed &&
      !socket.paused &&
      !this.#readEnded &&
      this.#backlog.length === 0 &&
      socket.listenerCount('message') > 0
    );
  }

  /** The socket resumed: emit what was held back, on a later turn. */
  resume(): void {
    if (this.#backlog.length > 0) this.#scheduleBacklog();
  }

  /** The socket closed: close the fds of every message held back. */
  discard(): void {
    for (const m of this.#backlog) closeFdList(this.#native, m.fds);
    this.#backlog = [];
  }

  readBatch(budget: number): void {
    const native = this.#native;
    const { BATCH_EOF, BATCH_BUDGET, BATCH_SHORT } = this.#k;
    const recs = recordsArray();
    const seqpacket = this.#kind === 'seqpacket';
    let remaining = budget;
    for (;;) {
      const bytes = native.recv(
        this.#fd,
        recs,
        Math.min(remaining, RECV_BATCH),
        this.#maxFds,
        this.#maxBytes,
        seqpacket,
      );
      // allocUnsafe: a small batch is a slice of Node's pool, no ArrayBuffer
      // of its own (and takeReceived overwrites every byte of it).
      let data: Buffer | undefined;
      if (bytes > 0) {
        data = Buffer.allocUnsafe(bytes);
        native.takeReceived(data);
      }
      const status = recs[0] as number;
      const count = recs[1] as number;
      remaining -= count;
      // Decode before any listener runs: the records array is shared.
      this.#deliver(decodeBatch(native, this.#k, seqpacket, recs, count, data));
      if (this.#socket.closed) return;
      if (status === BATCH_EOF) {
        this.#onEof();
        return;
      }
      if (status < 0) {
        this.#hooks.fail(this.#socket, errnoError(-status, 'recvmsg'));
        return;
      }
      // BATCH_DRAINED: the kernel queue is empty. BATCH_BUDGET: yield to the
      // loop; level-triggered polling brings us back. BATCH_SHORT: a short
      // stream read, so the queue was empty then; polling reports what came
      // since (recv_binding.h says why). Only the error path (budget
      // Infinity) keeps reading until drained: its poll watch is gone.
      const more =
        status === BATCH_BUDGET ||
        (status === BATCH_SHORT && remaining === Number.POSITIVE_INFINITY);
      if (!more || remaining <= 0 || !this.wantRead()) return;
    }
  }

  /**
   * Emits a decoded batch. Whatever is left when a listener pauses, closes
   * or throws is kept in order (backlog) or, once closed, has its fds closed.
   */
  #deliver(batch: Array<ReceivedMessage | RejectedMessage>): void {
    const socket = this.#socket;
    const end = batch.length;
    let i = 0;
    try {
      for (; i < end; i++) {
        const entry = batch[i] as ReceivedMessage | RejectedMessage;
        let message: ReceivedMessage;
        if (entry instanceof RejectedMessage) {
          if (socket.closed) continue;
          socket.emit('error', receiveError(entry.code, entry.fdCount, entry.bytes, this.#maxFds));
          // A SEQPACKET message is dropped whole. On a stream the bytes are
          // still delivered (without fds) so the byte stream stays intact.
          if (this.#kind !== 'stream' || entry.data.length === 0 || socket.closed) continue;
          message = { data: entry.data, fds: [] };
        } else {
          message = entry;
        }
        if (socket.closed) {
          closeFdList(this.#native, message.fds);
        } else if (socket.paused || socket.listenerCount('message') === 0) {
          this.#backlog.push(message);
        } else {
          socket.emit('message', message);
        }
      }
    } catch (err) {
      // A listener threw: keep what was not delivered, then let the
      // exception reach 'uncaughtException' like any listener error.
      for (i++; i < end; i++) {
        const entry = batch[i] as ReceivedMessage | RejectedMessage;
        if (entry instanceof RejectedMessage) continue;
        if (socket.closed) closeFdList(this.#native, entry.fds);
        else this.#backlog.push(entry);
      }
      if (this.#backlog.length > 0) this.#scheduleBacklog();
      this.#hooks.updateWatch(this.#socket);
      throw err;
    }
    this.#hooks.updateWatch(this.#socket);
  }

  #scheduleBacklog(): void {
    if (this.#backlogScheduled) return;
    this.#backlogScheduled = true;
    setImmediate(() => {
      this.#backlogScheduled = false;
      const socket = this.#socket;
      while (
        !socket.closed &&
        !socket.paused &&
        this.#backlog.length > 0 &&
        socket.listenerCount('message') > 0
      ) {
        const next = this.#backlog.shift() as ReceivedMessage;
        socket.emit('message', next);
      }
      if (this.#readEnded && this.#backlog.length === 0 && !socket.closed)
        this.#hooks.eof(this.#socket);
      this.#hooks.updateWatch(this.#socket);
    });
  }

  #onEof(): void {
    this.#readEnded = true;
    this.#hooks.updateWatch(this.#socket);
    if (this.#backlog.length > 0) {
      // 'end' must follow every message read before it.
      this.#scheduleBacklog();
      return;
    }
    this.#hooks.eof(this.#socket);
  }
}
