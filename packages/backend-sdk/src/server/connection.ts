// One framed connection of serveDaemon: reads and polls the mux, dispatches
// requests to the handler (several in flight, answered in any order), paces
// itself by its outbound queue, and fails alone. Accepting, refusing and
// closing connections is the server's job (daemon-server.ts).
import type { Socket } from 'node:net';
import { types } from 'node:util';
import type { PeerCredentials } from '@handoff/fdpass';
import {
  decodeFrameHeader,
  encodeFramed,
  eventFrame,
  FRAME_HEADER_BYTES,
  FRAMING_VERSION,
  type Frame,
  FrameKind,
  FramingError,
  responseFrame,
} from '@handoff/protocol';
import { BatchedWriter } from '../batched-writer.js';
import { endAfterFlush } from '../end-after-flush.js';
import { type BackendEndpointMux, MuxError } from '../mux.js';
import { RequestAbortedError, ServerConnectionError, type ServerErrorCode } from './errors.js';
import { type EventSink, InFlight } from './in-flight.js';
import type { HandlerResult, ServeDaemonOptions } from './options.js';

/** What a connection needs of the server that accepted it. */
export interface ConnectionHost {
  readonly serveOptions: ServeDaemonOptions;
  readonly muxer: BackendEndpointMux;
  /** Forgets a connection handed to onLegacy (or refused as legacy): it is no longer ours. */
  handOverLegacy(connection: Connection): void;
  emit(event: string, ...args: unknown[]): boolean;
}

export class Connection implements EventSink {
  readonly #inFlight = new Map<bigint, InFlight>();
  readonly #writer: BatchedWriter;
  #pumping = false;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes needed before polling again is worth it. */
  #needed = 1;
  #draining = false;
  #paused = false;
  /** A 'drain' listener is on the socket (see #updateFlow). */
  #drainWatched = false;
  #handedOver = false;
  /** The client ended its side: what it sent is all there will be. */
  #peerEnded = false;
  /** The socket's allowHalfOpen before we took it: a legacy handler gets it back. */
  #halfOpenBefore = false;
  /** A fault ended it: nothing more is read, dispatched or answered. */
  #failing = false;
  /** maxQueuedAnswerBytes, as applied to this socket. */
  readonly #mark: number;
  /** Where the server keeps it among its open connections. */
  slot = -1;
  /** Made when first asked for (only the server's close() asks): see `closed`. */
  #closed: Promise<void> | null = null;

  readonly #server: ConnectionHost;
  readonly #socket: Socket;
  readonly #peer: PeerCredentials;

  constructor(
    server: ConnectionHost,
    readonly id: number,
    socket: Socket,
    peer: PeerCredentials,
  ) {
    this.#server = server;
    this.#socket = socket;
    this.#peer = peer;
    this.#writer = new BatchedWriter(socket, () => this.#updateFlow());
    this.#mark = Math.max(
      server.serveOptions.maxQueuedAnswerBytes ?? DEFAULT_MAX_QUEUED_ANSWER_BYTES,
      socket.writableHighWaterMark,
    );
  }

  /**
   * Settles once the socket has closed. Made on demand rather than per
   * connection: a promise and a 'close' listener for every connection were
   * a measurable share of a short one's cost, and only a server closing
   * with this connection still open waits for it.
   */
  get closed(): Promise<void> {
    this.#closed ??= this.#socket.closed
      ? Promise.resolve()
      : new Promise((resolve) => this.#socket.once('close', () => resolve()));
    return this.#closed;
  }

  start(initial: Uint8Array | undefined, prelude?: Uint8Array): void {
    const { idleTimeoutMs } = this.#server.serveOptions;
    // Corked with whatever the initial bytes produce: one write to the client.
    if (prelude && prelude.length > 0) this.write(prelude);
    // Paused until bytes read before we owned the socket are handled, so
    // they are processed first and in order.
    this.#socket.pause();
    this.#socket.on('error', ignoreError);
    // Half-open, so that a client which sends its requests and then ends
    // its side still gets every answer: we end ours once they are written
    // (#closeIfDone). Node's own default would end ours at once, and what a
    // slower handler answered after that would be lost.
    this.#halfOpenBefore = this.#socket.allowHalfOpen;
    this.#socket.allowHalfOpen = true;
    // 'end' comes once: `on`, not `once`, which wraps every listener.
    this.#socket.on('end', this.#onEnd);
    this.#socket.on('data', this.#onData);
    if (idleTimeoutMs) {
      this.#socket.setTimeout(idleTimeoutMs, () => {
        if (this.#inFlight.size === 0) this.#socket.destroy();
      });
    }
    if (initial && initial.length > 0)
      this.#onData(Buffer.from(initial.buffer, initial.byteOffset, initial.byteLength));
    if (!this.#socket.destroyed && !this.#handedOver && !this.#failing && !this.#paused)
      this.#socket.resume();
  }

  readonly #onEnd = (): void => {
    this.#peerEnded = true;
    this.#closeIfDone();
  };

  /**
   * After the client ended its side: once nothing runs and no whole frame
   * waits, the connection is over. A partial frame left behind can never
   * complete. With nothing queued the socket is simply closed: the usual
   * end of a connection costs no shutdown(2) and no wait for writability.
   */
  #closeIfDone(): void {
    if (!this.#peerEnded || this.#handedOver || this.#failing || this.#socket.destroyed) return;
    if (this.#inFlight.size > 0) return;
    // #needed is 0 while frames wait for a slot or for the client to read.
    if (this.#buffered > 0 && this.#buffered >= this.#needed) return;
    this.#chunks = [];
    this.#buffered = 0;
    this.#writer.flush();
    if (this.#socket.writableLength === 0) this.#socket.destroy();
    else endAfterFlush(this.#socket);
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    this.#pump();
  };

  /**
   * Polls the mux over buffered bytes for as long as a slot for a request
   * is free and the outbound queue is under the mark.
   */
  #pump(): void {
    if (this.#handedOver || this.#failing || this.#socket.destroyed) return;
    // A handler that answers synchronously frees its slot inside the loop
    // below; the loop picks the next frame up itself.
    if (this.#pumping) return;
    if (this.#buffered < this.#needed) {
      this.#updateFlow();
      this.#closeIfDone();
      return;
    }
    const max = this.#server.serveOptions.maxInFlightPerConnection ?? 64;
    let buf =
      this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [];
    this.#buffered = 0;
    const mux = this.#server.muxer;
    this.#pumping = true;
    try {
      buf = this.#pollFrames(buf, max, mux);
    } finally {
      this.#pumping = false;
    }
    if (this.#handedOver || this.#failing || this.#socket.destroyed) return;
    if (buf.length > 0) {
      this.#chunks.push(buf);
      this.#buffered = buf.length;
    }
    // Wait for a whole frame before polling again: a 16 MiB body arriving in
    // 64 KiB chunks is gathered once, not re-scanned per chunk.
    const header =
      buf.length >= FRAME_HEADER_BYTES && buf[0] === FRAMING_VERSION ? safeHeader(buf) : null;
    this.#needed =
      this.#inFlight.size >= max || this.#socket.writableLength >= this.#mark
        ? 0
        : header
          ? FRAME_HEADER_BYTES + header.bodyLength
          : buf.length + 1;
    this.#updateFlow();
    this.#closeIfDone();
  }

  /** Handles whole messages at the front of `buf`; returns what is left. */
  #pollFrames(buf: Buffer, max: number, mux: BackendEndpointMux): Buffer {
    // Left in the buffer while every slot is taken or the client is not
    // reading our answers fast enough: reading is paused, so the kernel's
    // buffer (and then the client) absorbs the rest. Checked per frame —
    // one read can hold thousands of small requests for large answers.
    const socket = this.#socket;
    const mark = this.#mark;
    while (buf.length > 0 && this.#inFlight.size < max && socket.writableLength < mark) {
      let verdict: ReturnType<BackendEndpointMux['poll']>;
      try {
        verdict = mux.poll(buf);
      } catch (error) {
        this.#fail(
          'MUX',
          error instanceof MuxError ? `${error.code}: ${error.message}` : String(error),
          error,
        );
        return buf;
      }
      if (verdict.kind === 'NeedMoreBytes') break;
      if (verdict.kind === 'Legacy') {
        this.#toLegacy(buf);
        return buf;
      }
      if (verdict.kind === 'ProbeAnswered') this.write(verdict.reply);
      else this.#dispatch(verdict.frame);
      if (this.#failing || socket.destroyed) return buf;
      buf = buf.subarray(verdict.consumed);
    }
    return buf;
  }

  #toLegacy(buf: Buffer): void {
    const { onLegacy } = this.#server.serveOptions;
    this.#handedOver = true;
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.allowHalfOpen = this.#halfOpenBefore;
    this.#socket.pause();
    this.#socket.setTimeout(0);
    this.#server.handOverLegacy(this);
    this.abortAll();
    if (!onLegacy) {
      // Refused, but whatever was already owed goes out first: after a
      // handoff that is the broker's Negotiated reply (the prelude), which
      // the client needs to know what happened.
      this.#writer.flush();
      endAfterFlush(this.#socket);
      this.#server.emit(
        'connectionError',
        new ServerConnectionError(
          'LEGACY_REFUSED',
          this.id,
          'legacy-wire connection and no onLegacy handler',
        ),
      );
      return;
    }
    this.#server.emit('legacy', this.id);
    try {
      onLegacy(this.#socket, buf);
    } catch (error) {
      // Thrown while taking the socket over: its state is unknown.
      this.#socket.destroy();
      this.#server.emit(
        'connectionError',
        new ServerConnectionError(
          'HANDLER',
          this.id,
          `legacy handler failed: ${describeError(error)}`,
          error,
        ),
      );
    }
  }

  /** Queues bytes: batched per tick (see BatchedWriter). */
  write(bytes: Uint8Array): void {
    this.#writer.write(bytes);
  }

  sendEvent(request: InFlight, payload: unknown): void {
    if (this.#failing) return;
    const bytes = this.#encodeReply(request, payload, FrameKind.EVENT);
    if (bytes !== null) this.write(bytes);
  }

  #dispatch(frame: Frame): void {
    if (frame.kind === FrameKind.CANCEL) {
      this.#inFlight
        .get(frame.requestId)
        ?.abort(new RequestAbortedError('CANCELLED', 'cancelled by the client'));
      return;
    }
    if (frame.kind !== FrameKind.REQUEST) return; // responses/events from a client are not ours to handle
    if (this.#inFlight.has(frame.requestId)) {
      this.#fail('DUPLICATE_REQUEST_ID', `request id ${frame.requestId} is already in flight`);
      return;
    }
    const request = new InFlight(this, frame, this.id, this.#peer);
    this.#inFlight.set(frame.requestId, request);
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = this.#server.serveOptions.onRequest(frame, request);
    } catch (error) {
      this.#failed(request, error);
      return;
    }
    // A synchronous answer goes out without a trip through the microtask
    // queue. Neither callback can throw: a promise they hang off never
    // rejects unhandled.
    if (result instanceof Promise) {
      result.then(
        (payload) => this.#answered(request, payload),
        (error) => this.#failed(request, error),
      );
    } else if (isThenable(result)) {
      // A foreign thenable's then() may throw; Promise.resolve turns that
      // into a rejection.
      Promise.resolve(result).then(
        (payload) => this.#answered(request, payload),
        (error) => this.#failed(request, error),
      );
    } else this.#answered(request, result);
  }

  #answered(request: InFlight, payload: unknown): void {
    if (!request.aborted && !this.#failing) {
      const bytes = this.#encodeReply(request, payload, FrameKind.RESPONSE);
      if (bytes !== null) this.write(bytes);
    }
    this.#finish(request);
  }

  /**
   * The framed reply, or null after failing the connection: nothing the
   * handler hands back may throw out of a socket or promise callback.
   */
  #encodeReply(request: InFlight, payload: unknown, kind: FrameKind): Uint8Array | null {
    const what = kind === FrameKind.EVENT ? 'event' : 'answer';
    const id = request.frame.requestId;
    const empty = payload === undefined || payload === null;
    if (!empty && !(payload instanceof Uint8Array) && !types.isUint8Array(payload)) {
      this.#fail(
        'BAD_ANSWER',
        `${what} for request ${id} is ${describeValue(payload)}, not a Uint8Array`,
      );
      return null;
    }
    const init = empty ? {} : { payload: payload as Uint8Array };
    try {
      return encodeFramed(
        kind === FrameKind.EVENT
          ? eventFrame(request.frame, init)
          : responseFrame(request.frame, init),
      );
    } catch (error) {
      if (error instanceof FramingError && error.code === 'FRAME_TOO_LARGE') {
        this.#fail(
          'ANSWER_TOO_LARGE',
          `${what} for request ${id} does not fit a frame: ${error.message}`,
          error,
        );
      } else {
        this.#fail(
          'BAD_ANSWER',
          `${what} for request ${id} cannot be encoded: ${describeError(error)}`,
          error,
        );
      }
      return null;
    }
  }

  #failed(request: InFlight, error: unknown): void {
    this.#finish(request);
    if (request.aborted) return;
    this.#fail(
      'HANDLER',
      `handler failed for request ${request.frame.requestId}: ${describeError(error)}`,
      error,
    );
  }

  #finish(request: InFlight): void {
    const id = request.frame.requestId;
    if (this.#inFlight.get(id) === request) this.#inFlight.delete(id);
    if (this.#failing) return;
    if (this.#draining) {
      if (this.#inFlight.size === 0) this.#socket.end();
      return;
    }
    // A slot is free: frames already buffered go first, then reading resumes.
    this.#needed = 1;
    this.#pump();
  }

  /** Pauses reading while too much is running or the peer is not reading our answers. */
  #updateFlow(): void {
    if (this.#failing) return;
    const max = this.#server.serveOptions.maxInFlightPerConnection ?? 64;
    const shouldPause =
      this.#inFlight.size >= max ||
      this.#socket.writableNeedDrain ||
      this.#socket.writableLength >= this.#mark;
    if (shouldPause && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
      // Every wait on the outbound queue starts here, so 'drain' is listened
      // to from the first one on, not on every connection: most never wait.
      // Then the queue is empty: frames left waiting in our buffer go first.
      if (!this.#drainWatched) {
        this.#drainWatched = true;
        this.#socket.on('drain', () => this.#pump());
      }
    } else if (!shouldPause && this.#paused && !this.#draining) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  /**
   * Ends the connection after a fault (see ServerConnectionError): stops
   * reading and dispatching, aborts what runs, flushes the answers already
   * queued, then closes — without waiting for the client to close its
   * side, which it may never do.
   */
  #fail(code: ServerErrorCode, message: string, cause?: unknown): void {
    if (this.#failing || this.#socket.destroyed) return;
    this.#failing = true;
    const socket = this.#socket;
    socket.off('data', this.#onData);
    socket.pause();
    this.#chunks = [];
    this.#buffered = 0;
    this.abortAll();
    this.#writer.flush();
    endAfterFlush(socket);
    this.#server.emit('connectionError', new ServerConnectionError(code, this.id, message, cause));
  }

  /** Stop reading new requests; end once in-flight ones are answered. */
  drain(): void {
    this.#draining = true;
    this.#socket.pause();
    if (this.#inFlight.size === 0) this.#socket.end();
  }

  destroy(): void {
    this.abortAll();
    this.#socket.destroy();
  }

  abortAll(): void {
    for (const request of this.#inFlight.values())
      request.abort(new RequestAbortedError('CONNECTION_CLOSED', 'connection closed'));
    this.#inFlight.clear();
  }
}

/** The socket's 'error' listener, one for every connection: 'close' follows an error, and ends it. */
function ignoreError(): void {}

const DEFAULT_MAX_QUEUED_ANSWER_BYTES = 1024 * 1024;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    ((typeof value === 'object' && value !== null) || typeof value === 'function') &&
    'then' in value
  );
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return `a string (${value.length} chars)`;
  if (typeof value === 'object' && value !== null) {
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return typeof name === 'string' ? `a ${name}` : 'an object';
  }
  return `${typeof value === 'undefined' ? '' : 'a '}${typeof value}`;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  try {
    return String(error);
  } catch {
    return 'an unprintable value';
  }
}

function safeHeader(buf: Buffer) {
  try {
    return decodeFrameHeader(buf);
  } catch {
    return null; // poll() reports it
  }
}
