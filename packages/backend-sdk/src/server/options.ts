// What a daemon author hands serveDaemon and what its handlers receive: the
// options, the request context and the handler types. Types only; the
// server (daemon-server.ts) and each connection (connection.ts) read them.
import type { Socket } from 'node:net';
import type { PeerCredentials } from '@handoff/fdpass';
import type { Frame, PayloadProtocol } from '@handoff/protocol';
import type { LegacyDetector } from '../mux.js';
import type { DaemonIdentity } from '../probe-answer.js';

export interface RequestContext {
  /** Unique per connection within this server. */
  readonly connectionId: number;
  /** Kernel-attested peer of the connection. */
  readonly peer: PeerCredentials;
  /**
   * Aborted, with a RequestAbortedError, when the client cancels, the
   * connection drops or fails (see ServerConnectionError), or close()
   * gives up waiting.
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
  /**
   * A listening AF_UNIX stream socket already bound to `endpoint`, to serve
   * on instead of binding one (a broker binds each daemon's socket before it
   * spawns it, so clients that arrive while the daemon starts wait in the
   * backlog). Default: $HANDOFF_LISTEN_FD when $HANDOFF_ENDPOINT is
   * `endpoint`; the variable is then removed from process.env. close()
   * removes the socket file only if it is still the one served (as for a
   * socket of its own). A bad fd is an InheritedListenerError.
   */
  listenFd?: number;
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

export interface CloseOptions {
  /** How long in-flight requests may run before they are aborted (default 5000 ms). */
  deadlineMs?: number;
}
