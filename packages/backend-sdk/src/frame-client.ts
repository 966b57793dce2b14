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
  FramingError,
  MAX_FRAME_BYTES,
  requestFrame,
} from '@handoff/protocol';
import { BatchedWriter } from './batched-writer.js';
import { BackendSdkError } from './errors.js';

export type FrameClientErrorCode =
  /** The connection could not be opened (errno in the message and `cause`). */
  | 'CONNECT'
  /** The connection is closed or failed; every pending request gets this. */
  | 'CLOSED'
  /** The request's AbortSignal fired. */
  | 'ABORTED'
  /** The request's deadline passed. */
  | 'DEADLINE'
  /** Answered on another payload protocol. */
  | 'UNEXPECTED_PROTOCOL'
  /** Answered with a frame that is not a RESPONSE. */
  | 'UNEXPECTED_KIND'
  /** The server answered an id never sent: the connection is failed. */
  | 'UNKNOWN_REQUEST_ID'
  /** The server sent bytes that are not frames: the connection is failed. */
  | 'FRAMING'
  /** The request's frame is over the 16 MiB cap; nothing was sent. */
  | 'TOO_LARGE'
  /** The request cannot be encoded (a field out of range); nothing was sent. */
  | 'ENCODE';

export class FrameClientError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:FrameClientError';
  override readonly name = 'FrameClientError';
  declare readonly code: FrameClientErrorCode;
  /** The request it concerns, when it concerns one. */
  readonly requestId: bigint | undefined;

  constructor(code: FrameClientErrorCode, message: string, requestId?: bigint, cause?: unknown) {
    super(code, message, { cause });
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
const U32_MAX = 0xffff_ffff;
/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Ids of cancelled requests remembered so a late response is not an error. */
const CANCELLED_MEMORY = 1024;

/**
 * Events: 'event' (Frame of kind EVENT), 'close' (error?: FrameClientError).
 */
export class FrameClient extends EventEmitter {
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #pending = new Map<bigint, Pending>();
  readonly #cancelled = new Set<bigint>();
  #nextId = 1n;
  #failure: FrameClientError | null = null;
  readonly #writer: BatchedWriter;

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
    this.#socket = socket;
    this.#writer = new BatchedWriter(socket);
    this.#decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes ?? MAX_FRAME_BYTES });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) =>
      this.#fail(
        new FrameClientError('CLOSED', `connection error: ${error.message}`, undefined, error),
      ),
    );
    socket.on('close', () => this.#fail(new FrameClientError('CLOSED', 'connection closed')));
    // Its 'close' has come and gone: nothing would ever fail the requests
    // made on it, and writes to it are dropped.
    if (socket.destroyed)
      this.#fail(new FrameClientError('CLOSED', 'the socket is already closed'));
    // A socket handed over paused (after a handoff, say) starts flowing here.
    socket.resume();
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Sends a REQUEST and resolves with its RESPONSE frame. A request that
   * cannot be sent (TOO_LARGE, ENCODE, CLOSED, ABORTED before sending) is
   * rejected without touching the connection: no id in flight, no timer,
   * and so never a CANCEL for an id the server did not see.
   */
  request(
    payloadProtocol: number,
    payload: Uint8Array,
    options: RequestOptions = {},
  ): Promise<Frame> {
    if (this.#failure) return Promise.reject(this.#failure);
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
    // A request that is never sent gives its id back.
    const idBefore = this.#nextId;
    const requestId = this.#allocateId();
    let bytes: Uint8Array;
    try {
      bytes = encodeRequest(payloadProtocol, payload, requestId, deadline, options);
    } catch (error) {
      this.#nextId = idBefore;
      return Promise.reject(unsendable(error));
    }
    return new Promise<Frame>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () =>
        this.#cancel(
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
      this.#pending.set(requestId, { protocol: payloadProtocol, resolve, reject, cleanup });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (deadline !== undefined) {
        const onDeadline = () => {
          // setTimeout clamps delays over 2^31-1 ms (~24.8 days) to 1 ms;
          // a far deadline is reached in steps instead.
          const left = deadline - Date.now();
          if (left > MAX_TIMER_MS) {
            timer = setTimeout(onDeadline, MAX_TIMER_MS);
            return;
          }
          if (left > 0) {
            timer = setTimeout(onDeadline, left);
            return;
          }
          this.#cancel(
            requestId,
            new FrameClientError('DEADLINE', `request ${requestId} missed its deadline`, requestId),
          );
        };
        timer = setTimeout(onDeadline, Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS));
      }
      this.#write(bytes);
    });
  }

  /** Requests made in one tick leave together (see BatchedWriter). */
  #write(bytes: Uint8Array): void {
    this.#writer.write(bytes);
  }

  /** Closes the connection; pending requests fail with CLOSED. */
  close(): void {
    this.#fail(new FrameClientError('CLOSED', 'client closed'));
  }

  /** @internal Tests only: where request numbering goes on (to reach the 2^64 wrap). */
  get nextId(): bigint {
    return this.#nextId;
  }

  // Tests only, like the getter above.
  set nextId(id: bigint) {
    this.#nextId = id;
  }

  #allocateId(): bigint {
    // Ids start at 1, skip 0 (proto3's "unset"), wrap at 2^64, and never
    // reuse an id still in flight.
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id === U64_MAX ? 1n : id + 1n;
      if (!this.#pending.has(id)) return id;
    }
  }

  #cancel(requestId: bigint, error: FrameClientError): void {
    const entry = this.#pending.get(requestId);
    if (!entry) return;
    this.#settle(requestId, entry);
    this.#rememberCancelled(requestId);
    if (!this.#failure) {
      this.#write(
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

  #rememberCancelled(requestId: bigint): void {
    this.#cancelled.add(requestId);
    if (this.#cancelled.size > CANCELLED_MEMORY) {
      const oldest = this.#cancelled.values().next().value;
      if (oldest !== undefined) this.#cancelled.delete(oldest);
    }
  }

  #settle(requestId: bigint, entry: Pending): void {
    this.#pending.delete(requestId);
    entry.cleanup();
  }

  #onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#fail(
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
      if (this.#failure) return;
      this.#onFrame(frame);
    }
    if (this.#decoder.error) {
      this.#fail(
        new FrameClientError(
          'FRAMING',
          `bad frame from server: ${this.#decoder.error.message}`,
          undefined,
          this.#decoder.error,
        ),
      );
    }
  }

  #onFrame(frame: Frame): void {
    if (frame.kind === FrameKind.EVENT) {
      this.emit('event', frame);
      return;
    }
    const entry = this.#pending.get(frame.requestId);
    if (!entry) {
      if (this.#cancelled.delete(frame.requestId)) return; // a late answer to a cancelled request
      this.#fail(
        new FrameClientError(
          'UNKNOWN_REQUEST_ID',
          `response for unknown request id ${frame.requestId}`,
          frame.requestId,
        ),
      );
      return;
    }
    this.#settle(frame.requestId, entry);
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

  #fail(error: FrameClientError): void {
    if (this.#failure) return;
    this.#failure = error;
    const entries = [...this.#pending.entries()];
    this.#pending.clear();
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
    this.#socket.destroy();
    this.emit('close', error.message === 'client closed' ? undefined : error);
  }
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/** Encodes a REQUEST frame, or throws on a field the wire cannot carry. */
function encodeRequest(
  payloadProtocol: number,
  payload: Uint8Array,
  requestId: bigint,
  deadline: number | undefined,
  options: RequestOptions,
): Uint8Array {
  // The encoder would silently truncate these (and the answer would then
  // never match), so they are refused here.
  if (!Number.isInteger(payloadProtocol) || payloadProtocol < 0 || payloadProtocol > U32_MAX)
    throw new RangeError(`payload protocol ${payloadProtocol} is not a u32`);
  if (!(payload instanceof Uint8Array))
    throw new TypeError(`payload must be a Uint8Array, got ${typeof payload}`);
  if (deadline !== undefined && !(Number.isFinite(deadline) && deadline >= 0))
    throw new RangeError(`deadline ${deadline} is not a finite Unix time in ms`);
  return encodeFramed(
    requestFrame({
      payloadProtocol,
      payload,
      requestId,
      ...(deadline === undefined ? {} : { deadlineUnixMs: BigInt(Math.ceil(deadline)) }),
      ...(options.traceparent ? { traceparent: options.traceparent } : {}),
      ...(options.tracestate ? { tracestate: options.tracestate } : {}),
    }),
  );
}

function unsendable(error: unknown): FrameClientError {
  if (error instanceof FramingError && error.code === 'FRAME_TOO_LARGE') {
    return new FrameClientError(
      'TOO_LARGE',
      `request not sent: ${error.message}`,
      undefined,
      error,
    );
  }
  return new FrameClientError(
    'ENCODE',
    `request not sent: ${(error as Error).message}`,
    undefined,
    error,
  );
}
