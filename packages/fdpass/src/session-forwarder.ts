// SessionForwarder: sends socket sessions (session-wire.ts) over an
// FdSocket, never blocking and never queueing: a session goes out whole in
// one sendmsg or not at all. The caller keeps its own copy of each socket.
import type { Socket } from 'node:net';
import { FdPassError, fromNative } from './errors.js';
import { FdSocket, sendImmediately } from './fd-socket.js';
import type { ConnectOptions } from './fd-socket-options.js';
import { loadNative, type NativeBinding } from './native-loader.js';
import { fdOf } from './node-interop.js';
import { checkMaxData, encodeSession, MAX_SOCKADDR_SIZE } from './session-wire.js';

// Sessions up to this size fit one kernel buffer on a stream socket, so one
// sendmsg either sends all of it or nothing (EAGAIN).
const ATOMIC_STREAM_BYTES = 16 * 1024;

export interface SessionForwarderOptions {
  /** Largest data accepted by forward() (default 64 KiB). */
  maxDataSize?: number;
}

export interface ForwardOptions {
  /** Remote endpoint image to send instead of getpeername() (e.g. for UDP). */
  remote?: Uint8Array;
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
