// serveDaemon: the serving glue a daemon author calls. It listens on a
// private Unix socket, checks each peer's uid with SO_PEERCRED, runs the
// endpoint mux over each connection's bytes, answers identity probes
// itself, and dispatches framed requests to the daemon's handler — several
// in flight per connection, answered in any order. Legacy-wire connections
// are handed to the daemon with every byte already read. Connections handed
// off by a broker enter through adopt() and are served the same way. A
// request that cannot be answered fails its connection alone, and a
// connection's answers wait unproduced while its client is not reading.
import { EventEmitter } from 'node:events';
import { chmod, stat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { types } from 'node:util';
import { type PeerCredentials, peerCredentials } from '@handoff/fdpass';
import {
  decodeFrameHeader,
  encodeFramed,
  eventFrame,
  FRAME_HEADER_BYTES,
  FRAMING_VERSION,
  type Frame,
  FrameKind,
  FramingError,
  type PayloadProtocol,
  responseFrame,
} from '@handoff/protocol';
import { BatchedWriter } from './batched-writer.js';
import { endAfterFlush } from './end-after-flush.js';
import { BackendEndpointMux, type LegacyDetector, MuxError } from './mux.js';
import { preparePrivateSocketPath } from './private-socket.js';
import type { DaemonIdentity } from './probe-answer.js';
import { SlotSet } from './slot-set.js';

export interface RequestContext {
  /** Unique per connection within this server. */
  readonly connectionId: number;
  /** Kernel-attested peer of the connection. */
  readonly peer: PeerCredentials;
  /**
   * Aborted when the client cancels, the connection drops or fails (see
   * ServerConnectionError), or close() gives up waiting.
   */
  readonly signal: AbortSignal;
  /**
   * Sends an EVENT frame correlated with this request. Never throws: a
   * payload that is not a Uint8Array (BAD_ANSWER) or does not fit a frame
   * (ANSWER_TOO_LARGE) fails the connection as a bad answer would, and
   * aborts `signal`. A no-op once the request is aborted.
   */
  sendEvent(payload: Uint8Array): void;
}

/**
 * The RESPONSE payload (a Uint8Array, Buffers included), or nothing —
 * undefined or null — for an empty one. Anything else, or a payload that
 * does not fit a 16 MiB frame, fails the connection (see ServerConnectionError).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler written as `() => { … }` returns void, and must be accepted.
export type HandlerResult = Uint8Array | undefined | void;

export type RequestHandler = (
  frame: Frame,
  context: RequestContext,
) => HandlerResult | Promise<HandlerResult>;

/**
 * Takes over a legacy-wire connection: `buffered` holds every byte read so
 * far. The socket is paused; the handler owns it from here (resume it to read).
 */
export type LegacyHandler = (socket: Socket, buffered: Buffer) => void;

export interface ServeDaemonOptions {
  /** Unix socket path; its directory must be private (0700-like, ours). */
  endpoint: string;
  identity: DaemonIdentity;
  /** The consumer payload protocols served (ids or defined protocols). */
  payloadProtocols: Iterable<number | PayloadProtocol>;
  legacyDetector?: LegacyDetector;
  onRequest: RequestHandler;
  /** Without it, legacy-wire connections are closed. */
  onLegacy?: LegacyHandler;
  /** Peers allowed in; defaults to our own uid only. */
  allowedUids?: readonly number[];
  /** Default 1024; connections beyond are closed at once. */
  maxConnections?: number;
  /** Reading pauses while a connection has this many requests running (default 64). */
  maxInFlightPerConnection?: number;
  /**
   * High-water mark of a connection's outbound side: the bytes queued for
   * its socket and not yet taken by the kernel (default 1 MiB). No frame
   * of that connection is handled — no request dispatched, no probe
   * answered — while its queue is at or above this; it resumes once the
   * queue has drained. (Reading it stops earlier, once the socket's own
   * writableHighWaterMark is passed, as before; frames already read wait
   * in our buffer.) Values below writableHighWaterMark act as that value,
   * so a 'drain' is always due.
   *
   * So a connection holds at most: this mark, plus one answer (≤ 16 MiB)
   * per request already running when it was crossed (at most
   * maxInFlightPerConnection; one, when the handler answers
   * synchronously), plus its input buffer — one incomplete frame
   * (≤ 16 MiB + 5 bytes) and what the socket read ahead (≤ ~128 KiB).
   * EVENT frames a handler sends are not counted against the mark before
   * they are queued: a handler streaming events to a slow client paces
   * itself.
   */
  maxQueuedAnswerBytes?: number;
  /** Close a connection with nothing in flight after this long without bytes (default 0: never). */
  idleTimeoutMs?: number;
}

export type ServerErrorCode =
  | 'PEER_REJECTED'
  | 'MUX'
  /** onRequest threw or its promise rejected; or onLegacy threw. */
  | 'HANDLER'
  /** An answer or event payload does not fit a 16 MiB frame. */
  | 'ANSWER_TOO_LARGE'
  /** An answer or event payload is not a Uint8Array (nor, for an answer, undefined or null). */
  | 'BAD_ANSWER'
  | 'DUPLICATE_REQUEST_ID'
  | 'LEGACY_REFUSED'
  | 'TOO_MANY_CONNECTIONS';

/**
 * A per-connection problem, reported on the 'connectionError' event; the
 * server and its other connections keep serving. v1 has no error frame, so
 * a fault on an open connection (MUX, HANDLER, ANSWER_TOO_LARGE,
 * BAD_ANSWER, DUPLICATE_REQUEST_ID) ends that connection: it is no longer
 * read, the other requests running on it are aborted and their answers
 * dropped, and the answers already produced for it are flushed before it
 * closes. Its client reads every answer produced before the fault, in
 * order, then the end of the stream (ECONNRESET instead, on Linux, if it
 * had sent bytes the daemon never read); no frame for the failed request.
 */
export class ServerConnectionError extends Error {
  override readonly name = 'ServerConnectionError';
  readonly code: ServerErrorCode;
  readonly connectionId: number;
  constructor(code: ServerErrorCode, connectionId: number, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.connectionId = connectionId;
  }
}

export interface CloseOptions {
  /** How long in-flight requests may run before they are aborted (default 5000 ms). */
  deadlineMs?: number;
}

/**
 * Events: 'connection' ({ connectionId, peer, adopted }), 'connectionClosed'
 * (connectionId; framed connections only — a legacy one is the daemon's once
 * handed over), 'connectionError' (ServerConnectionError), 'legacy'
 * (connectionId), 'close'. Listeners attached as soon as serveDaemon
 * resolves (before the caller's next await) see every connection, including
 * one that arrived while it was starting.
 */
export interface DaemonServer extends EventEmitter {
  readonly endpoint: string;
  /** Open framed connections (legacy ones are the daemon's). */
  readonly connectionCount: number;
  /**
   * Serves a connection handed off by a broker; `buffered` are bytes already
   * read from it, `prelude` bytes to send it before anything else (written
   * in the same batch as the answers to `buffered`). Returns false when the
   * connection is refused (closing, peer uid not allowed, connection limit):
   * the socket is then destroyed and nothing was written to it.
   */
  adopt(socket: Socket, buffered?: Uint8Array, prelude?: Uint8Array): boolean;
  /** Stops accepting, lets in-flight requests finish until the deadline, removes the socket file. */
  close(options?: CloseOptions): Promise<void>;
}

export async function serveDaemon(options: ServeDaemonOptions): Promise<DaemonServer> {
  const server = new DaemonServerImpl(options);
  await server.listen();
  server.openGate();
  return server;
}

class DaemonServerImpl extends EventEmitter implements DaemonServer {
  readonly endpoint: string;
  private readonly mux: BackendEndpointMux;
  private readonly options: ServeDaemonOptions;
  private readonly allowed: ReadonlySet<number>;
  private readonly maxConnections: number;
  /** Open framed connections (a SlotSet, not a Set: see slot-set.ts). */
  private readonly connections = new SlotSet<Connection>();
  private readonly server: Server;
  private nextConnectionId = 1;
  private closing: Promise<void> | null = null;
  private socketInode: bigint | null = null;
  /**
   * Connections that arrived before serveDaemon resolved (the socket listens
   * before its mode and inode are settled). Served once the caller has had
   * its turn to attach listeners, so it sees a 'connection' event for every
   * connection — a daemon counting open connections for its idle timeout
   * must not miss one. They were accepted paused: nothing was read.
   */
  private early: Socket[] | null = [];

  constructor(options: ServeDaemonOptions) {
    super();
    this.options = options;
    this.endpoint = options.endpoint;
    const ids = [...options.payloadProtocols].map((p) => (typeof p === 'number' ? p : p.id));
    this.mux = new BackendEndpointMux({
      daemon: options.identity,
      servedPayloadProtocols: ids,
      ...(options.legacyDetector ? { legacyDetector: options.legacyDetector } : {}),
    });
    const uid = process.getuid?.();
    this.allowed = new Set(options.allowedUids ?? (uid === undefined ? [] : [uid]));
    this.maxConnections = options.maxConnections ?? 1024;
    this.server = createServer({ pauseOnConnect: true }, (socket) => {
      if (this.early !== null) this.early.push(socket);
      else this.accept(socket, undefined, false);
    });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(): Promise<void> {
    await preparePrivateSocketPath(this.endpoint);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ path: this.endpoint, readableAll: false, writableAll: false }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.endpoint, 0o600);
    this.socketInode = (await stat(this.endpoint, { bigint: true })).ino;
  }

  /**
   * Serves the early connections after the code awaiting serveDaemon ran:
   * its continuation is a microtask, and setImmediate comes after those.
   */
  openGate(): void {
    setImmediate(() => {
      const early = this.early ?? [];
      this.early = null;
      for (const socket of early) this.accept(socket, undefined, false);
    });
  }

  adopt(socket: Socket, buffered?: Uint8Array, prelude?: Uint8Array): boolean {
    return this.accept(socket, buffered, true, prelude);
  }

  private accept(
    socket: Socket,
    buffered: Uint8Array | undefined,
    adopted: boolean,
    prelude?: Uint8Array,
  ): boolean {
    const id = this.nextConnectionId++;
    if (this.closing) {
      socket.destroy();
      return false;
    }
    let peer: PeerCredentials;
    try {
      peer = peerCredentials(socket);
    } catch (error) {
      socket.destroy();
      this.emit(
        'connectionError',
        new ServerConnectionError(
          'PEER_REJECTED',
          id,
          `cannot read peer credentials: ${(error as Error).message}`,
          error,
        ),
      );
      return false;
    }
    if (!this.allowed.has(peer.uid)) {
      socket.destroy();
      this.emit(
        'connectionError',
        new ServerConnectionError(
          'PEER_REJECTED',
          id,
          `peer pid ${peer.pid} runs as uid ${peer.uid}, not allowed`,
        ),
      );
      return false;
    }
    if (this.connections.size >= this.maxConnections) {
      socket.destroy();
      this.emit(
        'connectionError',
        new ServerConnectionError(
          'TOO_MANY_CONNECTIONS',
          id,
          `over the ${this.maxConnections}-connection limit`,
        ),
      );
      return false;
    }
    const connection = new Connection(this, id, socket, peer);
    connection.slot = this.connections.add(connection);
    socket.once('close', () => {
      this.connections.delete(connection.slot, connection);
      connection.abortAll();
      this.emit('connectionClosed', id);
    });
    this.emit('connection', { connectionId: id, peer, adopted });
    connection.start(buffered, prelude);
    return true;
  }

  /** @internal */ get muxer(): BackendEndpointMux {
    return this.mux;
  }
  /** @internal */ get serveOptions(): ServeDaemonOptions {
    return this.options;
  }
  /** @internal */ get isClosing(): boolean {
    return this.closing !== null;
  }
  /** @internal */ handOverLegacy(connection: Connection): void {
    this.connections.delete(connection.slot, connection);
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(options.deadlineMs ?? 5000);
    return this.closing;
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.drain();
    const drained = Promise.all(this.connections.values().map((c) => c.closed));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    });
    await Promise.race([drained, deadline]);
    clearTimeout(timer);
    for (const connection of this.connections) connection.destroy();
    await Promise.all([stopped, ...this.connections.values().map((c) => c.closed)]);
    await this.removeSocketFile();
    this.emit('close');
  }

  /** Removes the socket file only if it is still the one we bound. */
  private async removeSocketFile(): Promise<void> {
    try {
      const info = await stat(this.endpoint, { bigint: true });
      if (info.ino === this.socketInode) await unlink(this.endpoint);
    } catch {
      // Already gone.
    }
  }
}

/**
 * One running request. Its AbortController is made only if the handler
 * asks for `signal` (most never do, and one costs more than echoing a
 * small frame); a cancel that comes first is remembered.
 */
class InFlight implements RequestContext {
  private controller: AbortController | null = null;
  private abortReason: unknown = undefined;
  aborted = false;

  constructor(
    private readonly connection: Connection,
    readonly frame: Frame,
    readonly connectionId: number,
    readonly peer: PeerCredentials,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  sendEvent(payload: Uint8Array): void {
    if (!this.aborted) this.connection.sendEvent(this, payload);
  }
}

class Connection {
  private readonly inFlight = new Map<bigint, InFlight>();
  private readonly writer: BatchedWriter;
  private pumping = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed before polling again is worth it. */
  private needed = 1;
  private draining = false;
  private paused = false;
  private handedOver = false;
  /** A fault ended it: nothing more is read, dispatched or answered. */
  private failing = false;
  /** maxQueuedAnswerBytes, as applied to this socket. */
  private readonly mark: number;
  /** Where the server keeps it among its open connections. */
  slot = -1;
  readonly closed: Promise<void>;

  constructor(
    private readonly server: DaemonServerImpl,
    readonly id: number,
    private readonly socket: Socket,
    private readonly peer: PeerCredentials,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.writer = new BatchedWriter(socket, () => this.updateFlow());
    this.mark = Math.max(
      server.serveOptions.maxQueuedAnswerBytes ?? DEFAULT_MAX_QUEUED_ANSWER_BYTES,
      socket.writableHighWaterMark,
    );
  }

  start(initial: Uint8Array | undefined, prelude?: Uint8Array): void {
    const { idleTimeoutMs } = this.server.serveOptions;
    // Corked with whatever the initial bytes produce: one write to the client.
    if (prelude && prelude.length > 0) this.write(prelude);
    // Paused until bytes read before we owned the socket are handled, so
    // they are processed first and in order.
    this.socket.pause();
    this.socket.on('error', () => {});
    this.socket.on('data', this.onData);
    // The queue is empty: frames left waiting in our buffer go first.
    this.socket.on('drain', () => this.pump());
    if (idleTimeoutMs) {
      this.socket.setTimeout(idleTimeoutMs, () => {
        if (this.inFlight.size === 0) this.socket.destroy();
      });
    }
    if (initial && initial.length > 0)
      this.onData(Buffer.from(initial.buffer, initial.byteOffset, initial.byteLength));
    if (!this.socket.destroyed && !this.handedOver && !this.failing && !this.paused)
      this.socket.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.pump();
  };

  /**
   * Polls the mux over buffered bytes for as long as a slot for a request
   * is free and the outbound queue is under the mark.
   */
  private pump(): void {
    if (this.handedOver || this.failing || this.socket.destroyed) return;
    // A handler that answers synchronously frees its slot inside the loop
    // below; the loop picks the next frame up itself.
    if (this.pumping) return;
    if (this.buffered < this.needed) {
      this.updateFlow();
      return;
    }
    const max = this.server.serveOptions.maxInFlightPerConnection ?? 64;
    let buf =
      this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    const mux = this.server.muxer;
    this.pumping = true;
    try {
      buf = this.pollFrames(buf, max, mux);
    } finally {
      this.pumping = false;
    }
    if (this.handedOver || this.failing || this.socket.destroyed) return;
    if (buf.length > 0) {
      this.chunks.push(buf);
      this.buffered = buf.length;
    }
    // Wait for a whole frame before polling again: a 16 MiB body arriving in
    // 64 KiB chunks is gathered once, not re-scanned per chunk.
    const header =
      buf.length >= FRAME_HEADER_BYTES && buf[0] === FRAMING_VERSION ? safeHeader(buf) : null;
    this.needed =
      this.inFlight.size >= max || this.socket.writableLength >= this.mark
        ? 0
        : header
          ? FRAME_HEADER_BYTES + header.bodyLength
          : buf.length + 1;
    this.updateFlow();
  }

  /** Handles whole messages at the front of `buf`; returns what is left. */
  private pollFrames(buf: Buffer, max: number, mux: BackendEndpointMux): Buffer {
    // Left in the buffer while every slot is taken or the client is not
    // reading our answers fast enough: reading is paused, so the kernel's
    // buffer (and then the client) absorbs the rest. Checked per frame —
    // one read can hold thousands of small requests for large answers.
    const socket = this.socket;
    const mark = this.mark;
    while (buf.length > 0 && this.inFlight.size < max && socket.writableLength < mark) {
      let verdict: ReturnType<BackendEndpointMux['poll']>;
      try {
        verdict = mux.poll(buf);
      } catch (error) {
        this.fail(
          'MUX',
          error instanceof MuxError ? `${error.code}: ${error.message}` : String(error),
          error,
        );
        return buf;
      }
      if (verdict.kind === 'NeedMoreBytes') break;
      if (verdict.kind === 'Legacy') {
        this.toLegacy(buf);
        return buf;
      }
      if (verdict.kind === 'ProbeAnswered') this.write(verdict.reply);
      else this.dispatch(verdict.frame);
      if (this.failing || socket.destroyed) return buf;
      buf = buf.subarray(verdict.consumed);
    }
    return buf;
  }

  private toLegacy(buf: Buffer): void {
    const { onLegacy } = this.server.serveOptions;
    this.handedOver = true;
    this.socket.off('data', this.onData);
    this.socket.pause();
    this.socket.setTimeout(0);
    this.server.handOverLegacy(this);
    this.abortAll();
    if (!onLegacy) {
      // Refused, but whatever was already owed goes out first: after a
      // handoff that is the broker's Negotiated reply (the prelude), which
      // the client needs to know what happened.
      this.writer.flush();
      endAfterFlush(this.socket);
      this.server.emit(
        'connectionError',
        new ServerConnectionError(
          'LEGACY_REFUSED',
          this.id,
          'legacy-wire connection and no onLegacy handler',
        ),
      );
      return;
    }
    this.server.emit('legacy', this.id);
    try {
      onLegacy(this.socket, buf);
    } catch (error) {
      // Thrown while taking the socket over: its state is unknown.
      this.socket.destroy();
      this.server.emit(
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
    this.writer.write(bytes);
  }

  sendEvent(request: InFlight, payload: unknown): void {
    if (this.failing) return;
    const bytes = this.encodeReply(request, payload, FrameKind.EVENT);
    if (bytes !== null) this.write(bytes);
  }

  private dispatch(frame: Frame): void {
    if (frame.kind === FrameKind.CANCEL) {
      this.inFlight.get(frame.requestId)?.abort(new Error('cancelled by the client'));
      return;
    }
    if (frame.kind !== FrameKind.REQUEST) return; // responses/events from a client are not ours to handle
    if (this.inFlight.has(frame.requestId)) {
      this.fail('DUPLICATE_REQUEST_ID', `request id ${frame.requestId} is already in flight`);
      return;
    }
    const request = new InFlight(this, frame, this.id, this.peer);
    this.inFlight.set(frame.requestId, request);
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = this.server.serveOptions.onRequest(frame, request);
    } catch (error) {
      this.failed(request, error);
      return;
    }
    // A synchronous answer goes out without a trip through the microtask
    // queue. Neither callback can throw: a promise they hang off never
    // rejects unhandled.
    if (result instanceof Promise) {
      result.then(
        (payload) => this.answered(request, payload),
        (error) => this.failed(request, error),
      );
    } else if (isThenable(result)) {
      // A foreign thenable's then() may throw; Promise.resolve turns that
      // into a rejection.
      Promise.resolve(result).then(
        (payload) => this.answered(request, payload),
        (error) => this.failed(request, error),
      );
    } else this.answered(request, result);
  }

  private answered(request: InFlight, payload: unknown): void {
    if (!request.aborted && !this.failing) {
      const bytes = this.encodeReply(request, payload, FrameKind.RESPONSE);
      if (bytes !== null) this.write(bytes);
    }
    this.finish(request);
  }

  /**
   * The framed reply, or null after failing the connection: nothing the
   * handler hands back may throw out of a socket or promise callback.
   */
  private encodeReply(request: InFlight, payload: unknown, kind: FrameKind): Uint8Array | null {
    const what = kind === FrameKind.EVENT ? 'event' : 'answer';
    const id = request.frame.requestId;
    const empty = payload === undefined || payload === null;
    if (!empty && !(payload instanceof Uint8Array) && !types.isUint8Array(payload)) {
      this.fail(
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
        this.fail(
          'ANSWER_TOO_LARGE',
          `${what} for request ${id} does not fit a frame: ${error.message}`,
          error,
        );
      } else {
        this.fail(
          'BAD_ANSWER',
          `${what} for request ${id} cannot be encoded: ${describeError(error)}`,
          error,
        );
      }
      return null;
    }
  }

  private failed(request: InFlight, error: unknown): void {
    this.finish(request);
    if (request.aborted) return;
    this.fail(
      'HANDLER',
      `handler failed for request ${request.frame.requestId}: ${describeError(error)}`,
      error,
    );
  }

  private finish(request: InFlight): void {
    const id = request.frame.requestId;
    if (this.inFlight.get(id) === request) this.inFlight.delete(id);
    if (this.failing) return;
    if (this.draining) {
      if (this.inFlight.size === 0) this.socket.end();
      return;
    }
    // A slot is free: frames already buffered go first, then reading resumes.
    this.needed = 1;
    this.pump();
  }

  /** Pauses reading while too much is running or the peer is not reading our answers. */
  private updateFlow(): void {
    if (this.failing) return;
    const max = this.server.serveOptions.maxInFlightPerConnection ?? 64;
    const shouldPause =
      this.inFlight.size >= max ||
      this.socket.writableNeedDrain ||
      this.socket.writableLength >= this.mark;
    if (shouldPause && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!shouldPause && this.paused && !this.draining) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /**
   * Ends the connection after a fault (see ServerConnectionError): stops
   * reading and dispatching, aborts what runs, flushes the answers already
   * queued, then closes — without waiting for the client to close its
   * side, which it may never do.
   */
  private fail(code: ServerErrorCode, message: string, cause?: unknown): void {
    if (this.failing || this.socket.destroyed) return;
    this.failing = true;
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.pause();
    this.chunks = [];
    this.buffered = 0;
    this.abortAll();
    this.writer.flush();
    endAfterFlush(socket);
    this.server.emit('connectionError', new ServerConnectionError(code, this.id, message, cause));
  }

  /** Stop reading new requests; end once in-flight ones are answered. */
  drain(): void {
    this.draining = true;
    this.socket.pause();
    if (this.inFlight.size === 0) this.socket.end();
  }

  destroy(): void {
    this.abortAll();
    this.socket.destroy();
  }

  abortAll(): void {
    for (const request of this.inFlight.values()) request.abort(new Error('connection closed'));
    this.inFlight.clear();
  }
}

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
