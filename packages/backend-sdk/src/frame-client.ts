// FrameClient: framed request/response over one stream connection. Many
// requests are in flight at once, correlated by request id; a response may
// come back in any order. Abort and deadline cancel one request (and tell
// the server with a CANCEL frame); a dead connection fails every pending
// request at once. It owns its socket and closes it.
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import {
  cancelFrame,
  type Endpoint,
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  type FramingError,
  MAX_FRAME_BYTES,
  requestFrame,
} from '@handoff/protocol';
import { BatchedWriter } from './batched-writer.js';

export type FrameClientErrorCode =
  | 'CONNECT'
  | 'CLOSED'
  | 'ABORTED'
  | 'DEADLINE'
  | 'UNEXPECTED_PROTOCOL'
  | 'UNEXPECTED_KIND'
  | 'UNKNOWN_REQUEST_ID'
  | 'FRAMING';

export class FrameClientError extends Error {
  override readonly name = 'FrameClientError';
  readonly code: FrameClientErrorCode;
  /** The request it concerns, when it concerns one. */
  readonly requestId: bigint | undefined;

  constructor(code: FrameClientErrorCode, message: string, requestId?: bigint, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.requestId = requestId;
  }
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Absolute deadline (Unix ms); sent to the server as `deadlineUnixMs`. */
  deadline?: number;
  /** Relative deadline; the earlier of this and `deadline` wins. */
  timeoutMs?: number;
  traceparent?: string;
  tracestate?: string;
}

export interface FrameClientOptions {
  /** Largest response frame accepted (default 16 MiB). */
  maxFrameBytes?: number;
  /** Fails connect() when the connection is not up in time (default 5000 ms). */
  connectTimeoutMs?: number;
}

interface Pending {
  protocol: number;
  resolve: (frame: Frame) => void;
  reject: (error: FrameClientError) => void;
  cleanup: () => void;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** Ids of cancelled requests remembered so a late response is not an error. */
const CANCELLED_MEMORY = 1024;

/**
 * Events: 'event' (Frame of kind EVENT), 'close' (error?: FrameClientError).
 */
export class FrameClient extends EventEmitter {
  private readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<bigint, Pending>();
  private readonly cancelled = new Set<bigint>();
  private nextId = 1n;
  private failure: FrameClientError | null = null;
  private readonly writer: BatchedWriter;

  /** Connects to a Unix socket path (or Endpoint), or wraps a connected socket. */
  static async connect(
    target: string | Endpoint | Socket,
    options: FrameClientOptions = {},
  ): Promise<FrameClient> {
    if (typeof target !== 'string' && !('path' in target && 'namespaceId' in target)) {
      return new FrameClient(target, options);
    }
    const path = typeof target === 'string' ? target : target.path;
    const socket = netConnect({ path });
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new FrameClientError('CONNECT', `connect to ${path} timed out after ${timeoutMs} ms`),
        );
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve();
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new FrameClientError(
            'CONNECT',
            `connect to ${path}: ${error.code ?? error.message}`,
            undefined,
            error,
          ),
        );
      });
    });
    return new FrameClient(socket, options);
  }

  constructor(socket: Socket, options: FrameClientOptions = {}) {
    super();
    this.socket = socket;
    this.writer = new BatchedWriter(socket);
    this.decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes ?? MAX_FRAME_BYTES });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) =>
      this.fail(
        new FrameClientError('CLOSED', `connection error: ${error.message}`, undefined, error),
      ),
    );
    socket.on('close', () => this.fail(new FrameClientError('CLOSED', 'connection closed')));
    // A socket handed over paused (after a handoff, say) starts flowing here.
    socket.resume();
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a REQUEST and resolves with its RESPONSE frame. */
  request(
    payloadProtocol: number,
    payload: Uint8Array,
    options: RequestOptions = {},
  ): Promise<Frame> {
    if (this.failure) return Promise.reject(this.failure);
    const { signal } = options;
    if (signal?.aborted) {
      return Promise.reject(
        new FrameClientError(
          'ABORTED',
          'request aborted before it was sent',
          undefined,
          signal.reason,
        ),
      );
    }
    const deadline = earliest(
      options.deadline,
      options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs,
    );
    const requestId = this.allocateId();
    const frame = requestFrame({
      payloadProtocol,
      payload,
      requestId,
      ...(deadline === undefined ? {} : { deadlineUnixMs: BigInt(Math.ceil(deadline)) }),
      ...(options.traceparent ? { traceparent: options.traceparent } : {}),
      ...(options.tracestate ? { tracestate: options.tracestate } : {}),
    });
    return new Promise<Frame>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () =>
        this.cancel(
          requestId,
          new FrameClientError(
            'ABORTED',
            `request ${requestId} aborted`,
            requestId,
            signal?.reason,
          ),
        );
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.pending.set(requestId, { protocol: payloadProtocol, resolve, reject, cleanup });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (deadline !== undefined) {
        timer = setTimeout(
          () =>
            this.cancel(
              requestId,
              new FrameClientError(
                'DEADLINE',
                `request ${requestId} missed its deadline`,
                requestId,
              ),
            ),
          Math.max(0, deadline - Date.now()),
        );
      }
      this.write(encodeFramed(frame));
    });
  }

  /** Requests made in one tick leave together (see BatchedWriter). */
  private write(bytes: Uint8Array): void {
    this.writer.write(bytes);
  }

  /** Closes the connection; pending requests fail with CLOSED. */
  close(): void {
    this.fail(new FrameClientError('CLOSED', 'client closed'));
  }

  private allocateId(): bigint {
    // Ids start at 1, skip 0 (proto3's "unset"), wrap at 2^64, and never
    // reuse an id still in flight.
    for (;;) {
      const id = this.nextId;
      this.nextId = id === U64_MAX ? 1n : id + 1n;
      if (!this.pending.has(id)) return id;
    }
  }

  private cancel(requestId: bigint, error: FrameClientError): void {
    const entry = this.pending.get(requestId);
    if (!entry) return;
    this.settle(requestId, entry);
    this.rememberCancelled(requestId);
    if (!this.failure) {
      this.write(
        encodeFramed(
          cancelFrame({
            payloadProtocol: entry.protocol,
            requestId,
            traceparent: '',
            tracestate: '',
          }),
        ),
      );
    }
    entry.reject(error);
  }

  private rememberCancelled(requestId: bigint): void {
    this.cancelled.add(requestId);
    if (this.cancelled.size > CANCELLED_MEMORY) {
      const oldest = this.cancelled.values().next().value;
      if (oldest !== undefined) this.cancelled.delete(oldest);
    }
  }

  private settle(requestId: bigint, entry: Pending): void {
    this.pending.delete(requestId);
    entry.cleanup();
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.fail(
        new FrameClientError(
          'FRAMING',
          `bad frame from server: ${(error as FramingError).message}`,
          undefined,
          error,
        ),
      );
      return;
    }
    for (const frame of frames) {
      if (this.failure) return;
      this.onFrame(frame);
    }
    if (this.decoder.error) {
      this.fail(
        new FrameClientError(
          'FRAMING',
          `bad frame from server: ${this.decoder.error.message}`,
          undefined,
          this.decoder.error,
        ),
      );
    }
  }

  private onFrame(frame: Frame): void {
    if (frame.kind === FrameKind.EVENT) {
      this.emit('event', frame);
      return;
    }
    const entry = this.pending.get(frame.requestId);
    if (!entry) {
      if (this.cancelled.delete(frame.requestId)) return; // a late answer to a cancelled request
      this.fail(
        new FrameClientError(
          'UNKNOWN_REQUEST_ID',
          `response for unknown request id ${frame.requestId}`,
          frame.requestId,
        ),
      );
      return;
    }
    this.settle(frame.requestId, entry);
    if (frame.kind !== FrameKind.RESPONSE) {
      entry.reject(
        new FrameClientError(
          'UNEXPECTED_KIND',
          `request ${frame.requestId} answered with frame kind ${FrameKind[frame.kind] ?? frame.kind}`,
          frame.requestId,
        ),
      );
    } else if (frame.payloadProtocol !== entry.protocol) {
      entry.reject(
        new FrameClientError(
          'UNEXPECTED_PROTOCOL',
          `request ${frame.requestId} on protocol ${entry.protocol} answered on ${frame.payloadProtocol}`,
          frame.requestId,
        ),
      );
    } else {
      entry.resolve(frame);
    }
  }

  private fail(error: FrameClientError): void {
    if (this.failure) return;
    this.failure = error;
    const entries = [...this.pending.entries()];
    this.pending.clear();
    for (const [requestId, entry] of entries) {
      entry.cleanup();
      entry.reject(
        new FrameClientError(
          error.code,
          `request ${requestId} failed: ${error.message}`,
          requestId,
          error,
        ),
      );
    }
    this.socket.destroy();
    this.emit('close', error.message === 'client closed' ? undefined : error);
  }
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
