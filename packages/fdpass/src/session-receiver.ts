// SessionReceiver: parses socket sessions (session-wire.ts) out of an
// FdSocket's messages, event-driven, and rejects anything incomplete or
// inconsistent. Owns every fd that arrived until it is handed out in a
// 'session' event; sending sessions is session-forwarder.ts.
import { EventEmitter } from 'node:events';
import { eventIterator } from './event-iterator.js';
import { closeFdList } from './fd-list.js';
import { FdSocket } from './fd-socket.js';
import { loadNative, type NativeBinding } from './native-loader.js';
import type { ReceivedMessage } from './recv-batch.js';
import {
  checkMaxData,
  decodeAddress,
  FIXED_HEADER_BYTES,
  incomplete,
  MAX_HEADER_BYTES,
  MAX_SOCKADDR_SIZE,
  type SocketSession,
} from './session-wire.js';

export interface SessionReceiverOptions {
  /** Sessions with more data are rejected (default 64 KiB). */
  maxDataSize?: number;
  /**
   * Check that the received fd's SO_DOMAIN/SO_TYPE match the header
   * (default true): a header that lies about its socket is rejected.
   */
  verifySocket?: boolean;
}

interface FdGroup {
  /** Stream offsets of the chunk the fds arrived with: [start, end). */
  start: number;
  end: number;
  fds: number[];
}

type ParseState = 'start' | 'length' | 'header' | 'data';

/**
 * Receives socket sessions from an FdSocket; emits 'session' (SocketSession),
 * 'error' (ERR_INCOMPLETE_SESSION, or the channel's own error), 'end' when
 * the forwarder closed cleanly between sessions, and 'close'. Any error
 * closes the channel: after a malformed session the byte stream cannot be
 * resynchronised. Every fd that arrived and was not handed out in a
 * 'session' event is closed.
 */
export class SessionReceiver extends EventEmitter {
  readonly #channel: FdSocket;
  readonly #native: NativeBinding;
  readonly #maxData: number;
  readonly #verify: boolean;
  #chunks: Buffer[] = [];
  #available = 0;
  #consumed = 0;
  #received = 0;
  #groups: FdGroup[] = [];
  #state: ParseState = 'start';
  #sessionFd = -1;
  #headerLength = 0;
  #pendingHeader: Omit<SocketSession, 'data' | 'fd'> | null = null;
  #dataLength = 0;
  #failed = false;

  constructor(channel: FdSocket, opts: SessionReceiverOptions = {}) {
    super();
    if (!(channel instanceof FdSocket)) {
      throw new TypeError('Usage: new SessionReceiver(channel: FdSocket, opts?)');
    }
    this.#maxData = checkMaxData(opts.maxDataSize, 'new SessionReceiver(channel, opts)');
    this.#verify = opts.verifySocket ?? true;
    this.#channel = channel;
    this.#native = loadNative();
    channel.on('message', (m: ReceivedMessage) => this.#onMessage(m));
    channel.on('end', () => this.#onEnd());
    channel.on('error', (err: Error) => this.#fail(err));
    channel.on('close', () => {
      this.#releaseAll();
      this.emit('close');
    });
  }

  get channel(): FdSocket {
    return this.#channel;
  }

  pause(): void {
    this.#channel.pause();
  }

  resume(): void {
    this.#channel.resume();
  }

  /** Closes the channel and every fd of a session not yet handed out. Idempotent. */
  close(): void {
    this.#releaseAll();
    this.#channel.close();
  }

  /** Sessions as an async iterator; leaving early closes the receiver. */
  [Symbol.asyncIterator](): AsyncIterableIterator<SocketSession> {
    return eventIterator<SocketSession>(this, 'session', (s) => {
      this.#native.closeFd(s.fd);
    });
  }

  #onMessage(m: ReceivedMessage): void {
    if (this.#failed) {
      closeFdList(this.#native, m.fds);
      return;
    }
    const start = this.#received;
    this.#received += m.data.length;
    if (m.fds.length > 0) this.#groups.push({ start, end: this.#received, fds: m.fds });
    if (m.data.length > 0) {
      this.#chunks.push(m.data);
      this.#available += m.data.length;
    }
    this.#parse();
  }

  #onEnd(): void {
    if (this.#failed) return;
    if (this.#state !== 'start' || this.#available > 0 || this.#groups.length > 0) {
      this.#fail(incomplete(`the channel ended in the middle of a session (${this.#state})`));
      return;
    }
    this.emit('end');
  }

  #parse(): void {
    while (!this.#failed) {
      switch (this.#state) {
        case 'start': {
          if (this.#available < 1) return;
          const at = this.#consumed;
          const group = this.#groups[0];
          if (group === undefined || group.start > at) {
            this.#fail(incomplete('a session started without an fd'));
            return;
          }
          if (group.end <= at) {
            this.#fail(incomplete('fds arrived in the middle of a session'));
            return;
          }
          this.#groups.shift();
          if (group.fds.length !== 1) {
            closeFdList(this.#native, group.fds);
            this.#fail(incomplete(`a session carried ${group.fds.length} fds instead of 1`));
            return;
          }
          this.#sessionFd = group.fds[0] as number;
          this.#take(1);
          this.#state = 'length';
          break;
        }
        case 'length': {
          if (this.#available < 2) return;
          const length = this.#take(2).readUInt16BE(0);
          if (length < FIXED_HEADER_BYTES || length > MAX_HEADER_BYTES) {
            this.#fail(
              incomplete(
                `header length ${length} outside ${FIXED_HEADER_BYTES}..${MAX_HEADER_BYTES}`,
              ),
            );
            return;
          }
          this.#headerLength = length;
          this.#state = 'header';
          break;
        }
        case 'header': {
          if (this.#available < this.#headerLength) return;
          if (!this.#parseHeader(this.#take(this.#headerLength))) return;
          this.#state = 'data';
          break;
        }
        case 'data': {
          if (this.#available < this.#dataLength) return;
          const data = this.#take(this.#dataLength);
          const stray = this.#groups[0];
          if (stray !== undefined && stray.end <= this.#consumed) {
            // Those fds came with bytes that all belong to this session, so
            // they are not attached to any session start.
            this.#fail(incomplete('fds arrived in the middle of a session'));
            return;
          }
          const header = this.#pendingHeader as Omit<SocketSession, 'data' | 'fd'>;
          const fd = this.#sessionFd;
          this.#sessionFd = -1;
          this.#pendingHeader = null;
          this.#state = 'start';
          if (this.#verify && !this.#matches(fd, header)) {
            this.#native.closeFd(fd);
            this.#fail(
              incomplete('the session header does not match the socket that came with it'),
            );
            return;
          }
          this.emit('session', { fd, ...header, data } satisfies SocketSession);
          break;
        }
      }
    }
  }

  #parseHeader(h: Buffer): boolean {
    const family = h.readUInt32BE(0);
    const type = h.readUInt32BE(4);
    const protocol = h.readUInt32BE(8);
    const localLength = h.readUInt32BE(12);
    if (localLength > MAX_SOCKADDR_SIZE || 16 + localLength + 4 > h.length) {
      this.#fail(incomplete(`local address size ${localLength} is inconsistent`));
      return false;
    }
    const local = Buffer.from(h.subarray(16, 16 + localLength));
    let o = 16 + localLength;
    const remoteLength = h.readUInt32BE(o);
    o += 4;
    if (remoteLength > MAX_SOCKADDR_SIZE || o + remoteLength + 4 !== h.length) {
      this.#fail(
        incomplete(`remote address size ${remoteLength} is inconsistent with the header length`),
      );
      return false;
    }
    const remote = Buffer.from(h.subarray(o, o + remoteLength));
    o += remoteLength;
    const dataLength = h.readUInt32BE(o);
    if (dataLength > this.#maxData) {
      this.#fail(
        incomplete(`session data of ${dataLength} bytes exceeds the cap of ${this.#maxData}`),
      );
      return false;
    }
    const decodedLocal = decodeAddress(this.#native, local);
    const decodedRemote = decodeAddress(this.#native, remote);
    if (localLength < 2 || this.#native.decodeSockaddr(local).family !== family) {
      this.#fail(incomplete('the local address does not belong to the session family'));
      return false;
    }
    if (remoteLength > 0 && this.#native.decodeSockaddr(remote).family !== family) {
      this.#fail(incomplete('the remote address does not belong to the session family'));
      return false;
    }
    this.#pendingHeader = { family, type, protocol, local: decodedLocal, remote: decodedRemote };
    this.#dataLength = dataLength;
    return true;
  }

  #matches(fd: number, header: Omit<SocketSession, 'data' | 'fd'>): boolean {
    try {
      return (
        this.#native.socketFamily(fd) === header.family &&
        this.#native.socketType(fd) === header.type
      );
    } catch {
      return false;
    }
  }

  #take(n: number): Buffer {
    this.#available -= n;
    this.#consumed += n;
    if (n === 0) return Buffer.alloc(0);
    const first = this.#chunks[0] as Buffer;
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0] as Buffer;
      const want = n - filled;
      if (chunk.length <= want) {
        chunk.copy(out, filled);
        filled += chunk.length;
        this.#chunks.shift();
      } else {
        chunk.copy(out, filled, 0, want);
        this.#chunks[0] = chunk.subarray(want);
        filled += want;
      }
    }
    return out;
  }

  #releaseAll(): void {
    if (this.#sessionFd >= 0) {
      this.#native.closeFd(this.#sessionFd);
      this.#sessionFd = -1;
    }
    const held = this.#groups.flatMap((g) => g.fds);
    closeFdList(this.#native, held);
    this.#groups = [];
    this.#chunks = [];
    this.#available = 0;
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#releaseAll();
    this.#channel.close();
    this.emit('error', err);
  }
}
