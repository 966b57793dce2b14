// Socket sessions: forwarding a live socket plus its endpoints and the bytes
// already read from it to another process, in the BIND 10 layout (fd with a
// 1-byte payload, then a length-prefixed header, then the data). The
// forwarder never blocks or queues; the receiver is event-driven and rejects
// anything incomplete. Raw fd passing itself lives in fd-socket.ts.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { FdPassError, fromNative } from './errors.js';
import { closeFdList } from './fd-list.js';
import {
  type ConnectOptions,
  eventIterator,
  FdSocket,
  type ReceivedMessage,
  sendImmediately,
} from './fd-socket.js';
import { loadNative, type NativeBinding } from './native-loader.js';
import { fdOf } from './node-interop.js';

/** sizeof(struct sockaddr_storage): no real address image is longer. */
export const MAX_SOCKADDR_SIZE = 128;
/** Default cap on session data, both when forwarding and when receiving. */
export const DEFAULT_MAX_SESSION_DATA = 64 * 1024;

// family, type, protocol, local size, remote size, data size: six u32 fields.
const FIXED_HEADER_BYTES = 24;
const MAX_HEADER_BYTES = FIXED_HEADER_BYTES + 2 * MAX_SOCKADDR_SIZE;
// Sessions up to this size fit one kernel buffer on a stream socket, so one
// sendmsg either sends all of it or nothing (EAGAIN).
const ATOMIC_STREAM_BYTES = 16 * 1024;

export type SessionAddress =
  | {
      family: 'inet' | 'inet6';
      address: string;
      port: number;
      flowinfo?: number;
      scopeId?: number;
      /** The sockaddr image as it travelled. */
      raw: Buffer;
    }
  | { family: 'unix'; path: string; abstract: boolean; raw: Buffer }
  | { family: 'unknown'; raw: Buffer };

export interface SocketSession {
  /** The forwarded socket, now owned by the receiver of this event. */
  fd: number;
  /** AF_* / SOCK_* / IPPROTO_* numbers as the forwarder's kernel reported them. */
  family: number;
  type: number;
  protocol: number;
  local: SessionAddress;
  /** family 'unknown' with an empty image when the socket was not connected. */
  remote: SessionAddress;
  /** Bytes the forwarder had already read from the socket. */
  data: Buffer;
}

export interface SessionForwarderOptions {
  /** Largest data accepted by forward() (default 64 KiB). */
  maxDataSize?: number;
}

export interface ForwardOptions {
  /** Remote endpoint image to send instead of getpeername() (e.g. for UDP). */
  remote?: Uint8Array;
}

function checkMaxData(value: number | undefined, where: string): number {
  const v = value ?? DEFAULT_MAX_SESSION_DATA;
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new TypeError(`Usage: ${where}: maxDataSize must be an integer 0..2^32-1`);
  }
  return v;
}

/** Encodes a full session (dummy byte + header + data) for one sendmsg. */
function encodeSession(
  family: number,
  type: number,
  protocol: number,
  local: Uint8Array,
  remote: Uint8Array,
  data: Uint8Array,
): Buffer {
  const headerLength = FIXED_HEADER_BYTES + local.length + remote.length;
  const out = Buffer.allocUnsafe(1 + 2 + headerLength + data.length);
  let o = 0;
  // The payload that carries the fd; its value means nothing.
  out[o++] = 0;
  o = out.writeUInt16BE(headerLength, o);
  o = out.writeUInt32BE(family >>> 0, o);
  o = out.writeUInt32BE(type >>> 0, o);
  o = out.writeUInt32BE(protocol >>> 0, o);
  o = out.writeUInt32BE(local.length, o);
  out.set(local, o);
  o += local.length;
  o = out.writeUInt32BE(remote.length, o);
  out.set(remote, o);
  o += remote.length;
  o = out.writeUInt32BE(data.length, o);
  out.set(data, o);
  return out;
}

/**
 * Sends socket sessions over an FdSocket. forward() either sends the whole
 * session in one sendmsg or throws: ERR_SESSION_WOULD_BLOCK when the channel
 * has no room (nothing was sent; retry later or treat the receiver as
 * stuck). Should the kernel ever accept only part of a session, the
 * forwarder closes the channel (the receiver then sees an incomplete session)
 * and throws ERR_SESSION_WOULD_BLOCK saying so; `broken` becomes true.
 */
export class SessionForwarder {
  readonly #channel: FdSocket;
  readonly #native: NativeBinding;
  readonly #maxData: number;
  #broken = false;

  static async connect(
    path: string,
    opts: ConnectOptions & SessionForwarderOptions = {},
  ): Promise<SessionForwarder> {
    const { maxDataSize, ...connectOptions } = opts;
    const channel = await FdSocket.connect(path, connectOptions);
    try {
      return new SessionForwarder(
        channel,
        maxDataSize === undefined ? {} : { maxDataSize: maxDataSize },
      );
    } catch (err) {
      channel.close();
      throw err;
    }
  }

  constructor(channel: FdSocket, opts: SessionForwarderOptions = {}) {
    if (!(channel instanceof FdSocket)) {
      throw new TypeError('Usage: new SessionForwarder(channel: FdSocket, opts?)');
    }
    this.#maxData = checkMaxData(opts.maxDataSize, 'new SessionForwarder(channel, opts)');
    this.#channel = channel;
    this.#native = loadNative();
  }

  get channel(): FdSocket {
    return this.#channel;
  }

  /** True once a partial send or a connection error made the channel unusable. */
  get broken(): boolean {
    return this.#broken;
  }

  /**
   * Forwards `sock` (an fd or a net.Socket; the caller keeps its own copy and
   * usually closes it afterwards) with `data`, the bytes already read from it.
   */
  forward(
    sock: number | Socket,
    data: Uint8Array = new Uint8Array(0),
    opts?: ForwardOptions,
  ): void {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError('Usage: forwarder.forward(sock: number | net.Socket, data?: Uint8Array)');
    }
    const fd = typeof sock === 'number' ? sock : fdOf(sock);
    if (!Number.isInteger(fd) || fd < 0) {
      throw new TypeError('Usage: forwarder.forward(sock: fd | net.Socket, data?)');
    }
    if (this.#broken || this.#channel.closed) {
      throw new FdPassError('ERR_SOCKET_CLOSED', 'the session channel is closed');
    }
    if (data.length > this.#maxData) {
      throw new FdPassError(
        'ERR_SESSION_TOO_LARGE',
        `session data of ${data.length} bytes exceeds maxDataSize ${this.#maxData}`,
      );
    }
    let info: ReturnType<NativeBinding['socketInfo']>;
    try {
      info = this.#native.socketInfo(fd);
    } catch (err) {
      throw fromNative(err, `fd ${fd}`);
    }
    const remote = opts?.remote ?? info.remote;
    if (info.local.length > MAX_SOCKADDR_SIZE || remote.length > MAX_SOCKADDR_SIZE) {
      throw new FdPassError('ERR_SESSION_TOO_LARGE', 'sockaddr image longer than 128 bytes');
    }
    const bytes = encodeSession(info.family, info.type, info.protocol, info.local, remote, data);
    if (this.#channel.writableLength > 0) {
      throw wouldBlock('the channel has queued writes');
    }
    if (this.#channel.kind === 'stream' && bytes.length > ATOMIC_STREAM_BYTES) {
      this.#checkRoom(bytes.length);
    }
    let sent: number;
    try {
      sent = sendImmediately(this.#channel, bytes, [fd]);
    } catch (err) {
      const e = err as FdPassError;
      if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK') {
        throw wouldBlock('the channel is full', e);
      }
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET' || e.code === 'ENOTCONN') {
        this.#broken = true;
        this.#channel.close();
      }
      throw err;
    }
    if (sent < bytes.length) {
      this.#broken = true;
      this.#channel.close();
      throw wouldBlock(
        `only ${sent} of ${bytes.length} session bytes fit; the channel was closed so the ` +
          'receiver sees an incomplete session instead of a corrupt one',
      );
    }
  }

  /** Closes the channel. Idempotent. */
  close(): void {
    this.#channel.close();
  }

  // A large session on a stream socket may span several kernel buffers, and
  // a non-blocking sendmsg would then send a prefix. Refuse up front unless
  // the send buffer (SO_SNDBUF minus SIOCOUTQ, both counted with kernel
  // overhead) clearly has room for all of it.
  #checkRoom(total: number): void {
    const fd = this.#channel.fd;
    const sndbuf = this.#native.sendBufferSize(fd);
    const queued = this.#native.queuedOutput(fd);
    if (sndbuf < 0 || queued < 0) return;
    const overhead = (Math.ceil(total / ATOMIC_STREAM_BYTES) + 1) * 1024;
    if (total + overhead > sndbuf) {
      throw new FdPassError(
        'ERR_SESSION_TOO_LARGE',
        `a ${total}-byte session can never be sent atomically through a ${sndbuf}-byte send buffer`,
      );
    }
    if (queued + total + overhead > sndbuf) throw wouldBlock('the channel is full');
  }
}

function wouldBlock(why: string, cause?: FdPassError): FdPassError {
  return new FdPassError(
    'ERR_SESSION_WOULD_BLOCK',
    `forwarding the session would block: ${why}`,
    cause === undefined
      ? {}
      : {
          cause,
          ...(cause.errno === undefined ? {} : { errno: cause.errno }),
          ...(cause.syscall === undefined ? {} : { syscall: cause.syscall }),
        },
  );
}

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

function incomplete(why: string): FdPassError {
  return new FdPassError('ERR_INCOMPLETE_SESSION', `incomplete socket session: ${why}`);
}

/** Decodes a sockaddr image as carried in a session. */
export function decodeSessionAddress(raw: Uint8Array): SessionAddress {
  return decodeAddress(loadNative(), Buffer.from(raw));
}

function decodeAddress(native: NativeBinding, raw: Buffer): SessionAddress {
  if (raw.length === 0) return { family: 'unknown', raw };
  const d = native.decodeSockaddr(raw);
  if ((d.kind === 'inet' || d.kind === 'inet6') && d.address !== undefined) {
    const out: SessionAddress = { family: d.kind, address: d.address, port: d.port ?? 0, raw };
    if (d.kind === 'inet6') {
      if (d.flowinfo !== undefined) out.flowinfo = d.flowinfo;
      if (d.scopeId !== undefined) out.scopeId = d.scopeId;
    }
    return out;
  }
  if (d.kind === 'unix') {
    const bytes = d.path ?? Buffer.alloc(0);
    const abstract = bytes.length > 0 && bytes[0] === 0;
    return { family: 'unix', path: bytes.toString(abstract ? 'latin1' : 'utf8'), abstract, raw };
  }
  return { family: 'unknown', raw };
}
