// connectService: how a client reaches a daemon through the broker. It sends
// a Hello with the handle-passing capability, and returns a working
// connection whichever way the broker routed it: on the same socket after a
// handoff (the broker has stepped out), or by reconnecting to the daemon's
// own socket when the broker says so or a handoff fell through. Every fault
// on the way (refused, reset, EOF, garbage, timeout) is a rejected promise
// with a ConnectServiceError; the returned socket is the caller's alone.
import { connect, type Socket } from 'node:net';
import {
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  decodeFrameHeader,
  ErrorCode,
  encodeFramed,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  Hello,
  HelloReply,
  type Negotiated,
  PROTOCOL_VERSION,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import { BrokerError } from '../errors.js';
import { brokerPackageVersion } from '../package-version.js';
import { defaultBrokerSocketPath } from '../paths.js';

export interface ConnectServiceOptions {
  /** The version wanted (x.y.z); required by the broker's policy. */
  version: string;
  brokerPath?: string;
  signal?: AbortSignal;
  /** Deadline for the whole connect, handoff or reconnect included (default 10 s). */
  timeoutMs?: number;
  clientVersion?: string;
  /**
   * Bytes for the daemon, sent in the same write as the Hello (e.g. the first
   * request). After a handoff the daemon reads them first; on the reconnect
   * route they are written as soon as the daemon's socket is connected. Either
   * way the reply arrives on the returned socket, and nothing is spent on a
   * round trip just to start talking. (Beyond the first 16 KiB, the rest is
   * written once the broker has answered.) If the daemon dies mid-handoff they may
   * be sent twice (once to it, once to its replacement): use it for requests
   * that are safe to repeat.
   */
  initialData?: Uint8Array;
  /** W3C trace context for the Hello; the broker carries a valid one to the daemon. */
  traceparent?: string;
  tracestate?: string;
}

export interface ServiceConnection {
  /**
   * Yours from here: the library has no listener left on it, so attach an
   * 'error' listener at once. After a handoff it is paused (bytes the daemon
   * sent early are waiting in it): call `resume()` or read it.
   */
  socket: Socket;
  route: 'handoff' | 'reconnect';
  negotiated: Negotiated;
}

export type ConnectServiceErrorCode =
  /** The broker answered with Refused (see `refusal`). */
  | 'REFUSED'
  /** A socket (the broker's, or backend_pipe on the reconnect route) could not be connected; see `errno`. */
  | 'CONNECT'
  /** The deadline (`timeoutMs`) passed. */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** The broker sent bytes that are not a valid reply (bad framing, over the frame cap, undecodable). */
  | 'PROTOCOL'
  /** The connection ended or failed (EOF, ECONNRESET, EPIPE: see `errno`) before it was usable. */
  | 'CLOSED';

export class ConnectServiceError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:ConnectServiceError';
  override readonly name = 'ConnectServiceError';
  declare readonly code: ConnectServiceErrorCode;
  /** For REFUSED: the broker's code, retry hint and details. */
  readonly refusal:
    | { code: ErrorCode; retryAfterMs: number; details: Record<string, string> }
    | undefined;
  /** The errno name (ENOENT, ECONNREFUSED, ECONNRESET, EPIPE, …) when a syscall failed. */
  readonly errno: string | undefined;
  /**
   * @internal Set when asking the broker again may succeed: reconnecting to
   * backend_pipe failed, or the connection closed before the reply or relay.
   */
  retryable = false;
  constructor(
    code: ConnectServiceErrorCode,
    message: string,
    refusal?: ConnectServiceError['refusal'],
    options: { errno?: string | undefined; cause?: unknown } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.refusal = refusal;
    this.errno = options.errno;
  }
}

export async function connectService(
  serviceName: string,
  options: ConnectServiceOptions,
): Promise<ServiceConnection> {
  const brokerPath = options.brokerPath ?? defaultBrokerSocketPath();
  const timeoutMs = options.timeoutMs ?? 10_000;
  const abort = new AbortController();
  const timer = setTimeout(
    () =>
      abort.abort(
        new ConnectServiceError(
          'TIMEOUT',
          `no connection to ${serviceName} within ${timeoutMs} ms`,
        ),
      ),
    timeoutMs,
  );
  const onOuterAbort = () =>
    abort.abort(
      new ConnectServiceError('ABORTED', 'connectService aborted', undefined, {
        cause: options.signal?.reason,
      }),
    );
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) onOuterAbort();
  try {
    try {
      return await attempt(serviceName, brokerPath, options, abort.signal);
    } catch (error) {
      // A handoff fell through and the daemon's own socket is dead too (it
      // died mid-handoff), or the broker let go of us before replying: ask
      // the broker once more, which prunes the dead backend and starts a
      // fresh one.
      if (!(error instanceof ConnectServiceError && error.retryable)) throw error;
      return await attempt(serviceName, brokerPath, options, abort.signal);
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}

async function attempt(
  serviceName: string,
  brokerPath: string,
  options: ConnectServiceOptions,
  signal: AbortSignal,
): Promise<ServiceConnection> {
  const broker = new Conversation(brokerPath, signal);
  try {
    await broker.connected();
    const hello = Hello.encode({
      clientMinProtocol: PROTOCOL_VERSION,
      clientMaxProtocol: PROTOCOL_VERSION,
      serviceName,
      wantedVersion: options.version,
      clientVersion: options.clientVersion ?? '',
      clientCapabilities: CAP_HANDLE_PASSING,
      peerPid: process.pid,
      clientLibName: '@handoff/broker',
      clientLibVersion: brokerPackageVersion() ?? '',
    });
    const helloFrame = encodeFramed(
      requestFrame({
        payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
        payload: hello,
        requestId: 1n,
        traceparent: options.traceparent ?? '',
        tracestate: options.tracestate ?? '',
      }),
    );
    const initial = options.initialData ?? new Uint8Array(0);
    const eager = initial.subarray(0, EAGER_INITIAL_BYTES);
    const held = initial.subarray(eager.length);
    broker.socket.write(eager.length > 0 ? Buffer.concat([helloFrame, eager]) : helloFrame);
    // Closed or reset before any reply: also how the broker lets go of a
    // client whose handoff a dying daemon never acknowledged. Asking again
    // reaches a respawned one.
    const replyFrame = await retryableIfClosed(broker.next());
    let reply: HelloReply;
    try {
      reply = HelloReply.decode(replyFrame.frame.payload);
    } catch (error) {
      throw new ConnectServiceError(
        'PROTOCOL',
        'the broker answered with an undecodable HelloReply',
        undefined,
        { cause: error },
      );
    }
    const result = reply.result;
    if (result.case === 'refused') {
      const r = result.value;
      throw new ConnectServiceError(
        'REFUSED',
        `broker refused ${serviceName}: ${ErrorCode[r.code] ?? r.code} — ${r.reason}`,
        {
          code: r.code,
          retryAfterMs: Number(r.retryAfterMs),
          details: r.details,
        },
      );
    }
    if (result.case !== 'negotiated')
      throw new ConnectServiceError(
        'PROTOCOL',
        'the broker answered neither Negotiated nor Refused',
      );
    const negotiated = result.value;
    const handoff =
      negotiated.handlePassedToken.length > 0 &&
      (negotiated.serverCapabilities & CAP_HANDLE_PASSING) !== 0n;
    if (handoff) {
      // Closed before the relay: the daemon died mid-handoff. Asking again
      // reaches a respawned one.
      const relay = await retryableIfClosed(broker.untilRelay(negotiated.connectionId));
      let ack: HandoffAck;
      try {
        ack = HandoffAck.decode(relay.payload);
      } catch (error) {
        throw new ConnectServiceError(
          'PROTOCOL',
          'the handoff relay carries an undecodable HandoffAck',
          undefined,
          { cause: error },
        );
      }
      if (ack.accepted) {
        const socket = broker.handBack();
        // The daemon holds the connection now; what was held back follows
        // what it already got, in order. A failure of this write is the
        // caller's to see, on the socket that is now theirs.
        if (held.length > 0) socket.write(held);
        return { socket, route: 'handoff', negotiated };
      }
    }
    // The reconnect route. The broker forwarded none of our bytes and closes
    // its side now, often with initialData unread: the reset that follows
    // the reply is expected, and this socket is done with either way.
    broker.dispose();
    // net.connect() with an empty path would dial TCP on localhost instead.
    if (negotiated.backendPipe === '')
      throw new ConnectServiceError('PROTOCOL', 'the broker sent no backend_pipe to reconnect to');
    const direct = new Conversation(negotiated.backendPipe, signal);
    try {
      await direct.connected();
    } catch (error) {
      direct.dispose();
      if (error instanceof ConnectServiceError && error.code === 'CONNECT') error.retryable = true;
      throw error;
    }
    // Every byte written before the handoff reaches the daemon exactly once:
    // here, since the broker passed none of them on.
    if (initial.length > 0) direct.socket.write(initial);
    return { socket: direct.handBack(), route: 'reconnect', negotiated };
  } catch (error) {
    broker.dispose();
    throw error;
  }
}

/**
 * How much of initialData goes out with the Hello. If the broker answers
 * and closes (a refusal, the reconnect route) while part of our write is
 * still being sent, that part fails with EPIPE and Node destroys the
 * socket, dropping the reply already waiting in it. A write this small is
 * queued to the broker whole, as one piece (Linux cuts stream writes into
 * ~36 KiB skbs), before the broker can read the Hello in it, so nothing is
 * left to fail. The rest is written once the route is known.
 */
const EAGER_INITIAL_BYTES = 16 * 1024;

async function retryableIfClosed<T>(pending: Promise<T>): Promise<T> {
  try {
    return await pending;
  } catch (error) {
    if (error instanceof ConnectServiceError && error.code === 'CLOSED') error.retryable = true;
    throw error;
  }
}

interface RawFrame {
  frame: Frame;
  /** The frame's bytes as they came, header included. */
  raw: Buffer;
}

/**
 * One socket while connectService uses it. It listens for every event the
 * socket can emit from the moment it is created, so a fault (refused,
 * reset, EOF, abort) is recorded and surfaces at whichever await is
 * pending, never as an 'error' with no listener. Frames already received
 * are read before a fault is reported: a reply followed by a reset is
 * still a reply. It owns the socket until handBack() or dispose().
 */
class Conversation {
  readonly socket: Socket;
  /** Bytes received and not yet cut into frames. */
  private chunks: Buffer[] = [];
  private size = 0;
  /** Frames that arrived before the relay, for the caller. */
  private kept: Buffer[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private isConnected = false;
  private reading = false;

  constructor(
    private readonly path: string,
    private readonly signal: AbortSignal,
  ) {
    this.socket = connect({ path });
    this.socket.on('connect', this.onConnect);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
    signal.addEventListener('abort', this.onAbort, { once: true });
    if (signal.aborted) this.onAbort();
  }

  private readonly wake = () => this.waiter?.();
  private readonly onConnect = () => {
    this.isConnected = true;
    this.wake();
  };
  private readonly onData = (chunk: Buffer) => {
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake();
  };
  private readonly onError = (error: NodeJS.ErrnoException) => {
    const errno = error.code;
    this.failure ??= this.isConnected
      ? new ConnectServiceError(
          'CLOSED',
          `the connection to ${this.path} failed during connectService (${errno ?? error.message})`,
          undefined,
          { errno, cause: error },
        )
      : new ConnectServiceError(
          'CONNECT',
          `cannot connect to ${this.path}: ${errno ?? error.message}`,
          undefined,
          { errno, cause: error },
        );
    this.wake();
  };
  private readonly onClose = () => {
    this.failure ??= new ConnectServiceError(
      'CLOSED',
      `the connection to ${this.path} closed during connectService`,
    );
    this.wake();
  };
  private readonly onAbort = () => {
    this.failure ??= this.signal.reason as Error;
    this.socket.destroy();
    this.wake();
  };

  private wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiter = () => {
        this.waiter = null;
        resolve();
      };
    });
  }

  async connected(): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.isConnected) return;
      await this.wait();
    }
  }

  async next(): Promise<RawFrame> {
    if (!this.reading) {
      this.reading = true;
      this.socket.on('data', this.onData);
    }
    for (;;) {
      const frame = this.take();
      if (frame) return frame;
      if (this.failure) throw this.failure;
      await this.wait();
    }
  }

  async untilRelay(connectionId: bigint): Promise<Frame> {
    for (;;) {
      const { frame, raw } = await this.next();
      if (
        frame.kind === FrameKind.EVENT &&
        frame.payloadProtocol === HANDOFF_PAYLOAD_PROTOCOL &&
        frame.requestId === connectionId
      )
        return frame;
      this.kept.push(raw);
    }
  }

  /**
   * Cuts the next whole frame off the received bytes. The header is checked
   * as soon as it is in (a bad version byte or a length over the 16 MiB cap
   * fails at once), and the body is copied once, when complete.
   */
  private take(): RawFrame | null {
    if (this.size === 0) return null;
    try {
      const head =
        this.chunks[0]!.length >= FRAME_HEADER_BYTES || this.chunks.length === 1
          ? this.chunks[0]!
          : Buffer.concat(this.chunks, Math.min(this.size, FRAME_HEADER_BYTES));
      const header = decodeFrameHeader(head.subarray(0, FRAME_HEADER_BYTES));
      if (!header) return null;
      const end = FRAME_HEADER_BYTES + header.bodyLength;
      if (this.size < end) return null;
      const all =
        this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
      const raw = all.subarray(0, end);
      const rest = all.subarray(end);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.size = rest.length;
      const decoded = tryDecodeFramed(raw);
      if (!decoded) throw new Error('frame incomplete after its header said it was whole');
      return { frame: decoded.frame, raw };
    } catch (error) {
      throw new ConnectServiceError(
        'PROTOCOL',
        `bad frame from ${this.path}: ${(error as Error).message}`,
        undefined,
        { cause: error },
      );
    }
  }

  /**
   * Gives the socket to the caller: no listener of ours is left on it (the
   * caller's 'error' listener must be the one to hear its faults), and
   * every byte not consumed here is put back, in order, for the caller to
   * read first. Errors are emitted from later ticks, after the caller's
   * await has resumed, so none can fire between this and the caller's
   * listener.
   */
  handBack(): Socket {
    if (this.failure) {
      const failure = this.failure;
      if (failure instanceof ConnectServiceError && failure.code === 'CLOSED')
        failure.retryable = true;
      this.dispose();
      throw failure;
    }
    this.detach();
    if (this.reading) {
      this.socket.off('data', this.onData);
      this.socket.pause();
      const rest = Buffer.concat([...this.kept, ...this.chunks]);
      if (rest.length > 0) this.socket.unshift(rest);
    }
    this.socket.off('error', this.onError);
    return this.socket;
  }

  /**
   * Closes the socket. The 'error' listener stays: an error already queued
   * for a socket nobody holds any more has nowhere else to go.
   */
  dispose(): void {
    this.detach();
    this.socket.off('data', this.onData);
    this.socket.destroy();
  }

  private detach(): void {
    this.socket.off('connect', this.onConnect);
    this.socket.off('close', this.onClose);
    this.signal.removeEventListener('abort', this.onAbort);
    this.waiter = null;
  }
}
