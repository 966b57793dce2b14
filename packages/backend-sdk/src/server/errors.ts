// The errors serveDaemon reports: a connection's fault on 'connectionError',
// and the reason a request's signal is aborted with. The server and its
// connections import these; nothing here knows about sockets.
import { BackendSdkError } from '../errors.js';

export type ServerErrorCode =
  /**
   * The peer's uid is not in allowedUids, or its credentials cannot be read.
   * Reported once per connection, however often a broker offers it again.
   */
  | 'PEER_REJECTED'
  /** The bytes are not the framed wire (a MuxError is the cause). */
  | 'MUX'
  /** onRequest threw or its promise rejected; or onLegacy threw. */
  | 'HANDLER'
  /** An answer or event payload does not fit a 16 MiB frame. */
  | 'ANSWER_TOO_LARGE'
  /** An answer or event payload is not a Uint8Array (nor, for an answer, undefined or null). */
  | 'BAD_ANSWER'
  /** A REQUEST reused the id of one still running. */
  | 'DUPLICATE_REQUEST_ID'
  /** A legacy-wire connection, and no onLegacy handler. */
  | 'LEGACY_REFUSED'
  /** Over maxConnections: the connection is closed at once. */
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
export class ServerConnectionError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:ServerConnectionError';
  override readonly name = 'ServerConnectionError';
  declare readonly code: ServerErrorCode;
  readonly connectionId: number;
  constructor(code: ServerErrorCode, connectionId: number, message: string, cause?: unknown) {
    super(code, message, { cause });
    this.connectionId = connectionId;
  }
}

export type RequestAbortedCode =
  /** The client sent a CANCEL frame for the request. */
  | 'CANCELLED'
  /** The connection closed, failed or was handed over while the request ran. */
  | 'CONNECTION_CLOSED';

/** The reason a handler's `signal` is aborted with. */
export class RequestAbortedError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:RequestAbortedError';
  override readonly name = 'RequestAbortedError';
  declare readonly code: RequestAbortedCode;
}
