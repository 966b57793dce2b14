// connectService: how a client reaches a daemon through the broker. It sends
// a Hello with the handle-passing capability, and returns a working
// connection whichever way the broker routed it: on the same socket after a
// handoff (the broker has stepped out), or by reconnecting to the daemon's
// own socket when the broker says so or a handoff fell through.
import { connect, type Socket } from 'node:net';
import {
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  ErrorCode,
  encodeFramed,
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
import { defaultBrokerSocketPath } from './paths.js';

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
   * round trip just to start talking. If the daemon dies mid-handoff they may
   * be sent twice (once to it, once to its replacement): use it for requests
   * that are safe to repeat.
   */
  initialData?: Uint8Array;
  /** W3C trace context for the Hello; the broker carries a valid one to the daemon. */
  traceparent?: string;
  tracestate?: string;
}

export interface ServiceConnection {
  socket: Socket;
  route: 'handoff' | 'reconnect';
  negotiated: Negotiated;
}

export type ConnectServiceErrorCode =
  | 'REFUSED'
  | 'CONNECT'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'PROTOCOL'
  | 'CLOSED';

export class ConnectServiceError extends Error {
  override readonly name = 'ConnectServiceError';
  readonly code: ConnectServiceErrorCode;
  /** For REFUSED: the broker's code, retry hint and details. */
  readonly refusal:
    | { code: ErrorCode; retryAfterMs: number; details: Record<string, string> }
    | undefined;
  /**
   * @internal Set when asking the broker again may succeed: reconnecting to
   * backend_pipe failed, or a handed-off connection closed before the relay.
   */
  retryable = false;
  constructor(
    code: ConnectServiceErrorCode,
    message: string,
    refusal?: ConnectServiceError['refusal'],
  ) {
    super(message);
    this.code = code;
    this.refusal = refusal;
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
    abort.abort(new ConnectServiceError('ABORTED', 'connectService aborted'));
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) onOuterAbort();
  try {
    try {
      return await attempt(serviceName, brokerPath, options, abort.signal);
    } catch (error) {
      // A handoff fell through and the daemon's own socket is dead too (it
      // died mid-handoff): ask the broker once more, which prunes the dead
      // backend and starts a fresh one.
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
  const socket = await open(brokerPath, signal);
  const reader = new FrameReader(socket, signal);
  try {
    const hello = Hello.encode({
      clientMinProtocol: PROTOCOL_VERSION,
      clientMaxProtocol: PROTOCOL_VERSION,
      serviceName,
      wantedVersion: options.version,
      clientVersion: options.clientVersion ?? '',
      clientCapabilities: CAP_HANDLE_PASSING,
      peerPid: process.pid,
      clientLibName: '@handoff/broker',
      clientLibVersion: '0.0.0',
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
    const initial = options.initialData;
    socket.write(initial && initial.length > 0 ? Buffer.concat([helloFrame, initial]) : helloFrame);
    let replyFrame: Frame;
    try {
      replyFrame = await reader.next();
    } catch (error) {
      // Closed before any reply: also how the broker lets go of a client
      // whose handoff a dying daemon never acknowledged. Asking again
      // reaches a respawned one.
      if (error instanceof ConnectServiceError && error.code === 'CLOSED') error.retryable = true;
      throw error;
    }
    let reply: HelloReply;
    try {
      reply = HelloReply.decode(replyFrame.payload);
    } catch {
      throw new ConnectServiceError(
        'PROTOCOL',
        'the broker answered with an undecodable HelloReply',
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
      // Frames the daemon sent before the relay (answers to bytes we had
      // pipelined) are kept and put back, in order, around the relay.
      let relay: Frame;
      try {
        relay = await reader.untilRelay(negotiated.connectionId);
      } catch (error) {
        // Closed before the relay: the daemon died mid-handoff. Asking again
        // reaches a respawned one.
        if (error instanceof ConnectServiceError && error.code === 'CLOSED') error.retryable = true;
        throw error;
      }
      const ack = HandoffAck.decode(relay.payload);
      if (ack.accepted) {
        reader.release();
        return { socket, route: 'handoff', negotiated };
      }
    }
    reader.release();
    socket.destroy();
    let direct: Socket;
    try {
      direct = await open(negotiated.backendPipe, signal);
    } catch (error) {
      if (error instanceof ConnectServiceError) error.retryable = true;
      throw error;
    }
    if (initial && initial.length > 0) direct.write(initial);
    return { socket: direct, route: 'reconnect', negotiated };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

function open(path: string, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const socket = connect({ path });
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      reject(
        new ConnectServiceError(
          'CONNECT',
          `cannot connect to ${path}: ${error.code ?? error.message}`,
        ),
      );
    });
  });
}

/** Reads whole frames off a socket without losing a byte for whoever reads next. */
class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);
  private kept: Buffer[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly signal: AbortSignal,
  ) {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  private readonly onData = (chunk: Buffer) => {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.waiter?.();
  };
  private readonly onClose = () => {
    this.failure ??= new ConnectServiceError(
      'CLOSED',
      'the connection closed during connectService',
    );
    this.waiter?.();
  };
  private readonly onAbort = () => {
    this.failure ??= this.signal.reason as Error;
    this.waiter?.();
  };

  async next(): Promise<Frame> {
    for (;;) {
      let decoded: ReturnType<typeof tryDecodeFramed>;
      try {
        decoded = tryDecodeFramed(this.buffered);
      } catch (error) {
        throw new ConnectServiceError('PROTOCOL', `bad frame: ${(error as Error).message}`);
      }
      if (decoded) {
        const raw = this.buffered.subarray(0, decoded.consumed);
        this.buffered = this.buffered.subarray(decoded.consumed);
        (decoded.frame as Frame & { raw?: Buffer }).raw = raw;
        return decoded.frame;
      }
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => {
        this.waiter = () => {
          this.waiter = null;
          resolve();
        };
      });
    }
  }

  async untilRelay(connectionId: bigint): Promise<Frame> {
    for (;;) {
      const frame = await this.next();
      if (
        frame.kind === FrameKind.EVENT &&
        frame.payloadProtocol === HANDOFF_PAYLOAD_PROTOCOL &&
        frame.requestId === connectionId
      )
        return frame;
      this.kept.push((frame as Frame & { raw: Buffer }).raw);
    }
  }

  /** Stops reading and puts every byte not consumed back into the socket, in order. */
  release(): void {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.signal.removeEventListener('abort', this.onAbort);
    this.socket.pause();
    const rest = Buffer.concat([...this.kept, this.buffered]);
    if (rest.length > 0) this.socket.unshift(rest);
  }
}
