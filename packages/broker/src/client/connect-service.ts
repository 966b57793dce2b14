// connectService: how a client reaches a daemon through the broker. It sends
// a Hello with the handle-passing capability, and returns a working
// connection whichever way the broker routed it: on the same socket after a
// handoff (the broker has stepped out), or by reconnecting to the daemon's
// own socket when the broker says so or a handoff fell through. Every fault
// on the way (refused, reset, EOF, garbage, timeout) is a rejected promise
// with a ConnectServiceError; the returned socket is the caller's alone.
import type { Socket } from 'node:net';
import {
  CAP_HANDLE_PASSING,
  ErrorCode,
  type Frame,
  HandoffAck,
  HelloReply,
  type Negotiated,
} from '@handoff/protocol';
import { defaultBrokerSocketPath } from '../paths.js';
import { noteCacheSession } from './cache-session-report.js';
import { CallCancellation, type Cancellable } from './cancellation.js';
import { ConnectServiceError } from './connect-service-error.js';
import { Conversation } from './conversation.js';
import { type Expiring, unwatchDeadline, watchDeadline } from './deadline-timer.js';
import {
  connectCached,
  endpointCacheEnabled,
  endpointCacheKey,
  rememberEndpoint,
} from './endpoint-cache.js';
import { helloFrame } from './hello-frame.js';
import { ConnectBackoff, type ConnectRetryOptions, pause } from './retry.js';

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
  /**
   * Back-off for failures worth another try, within `timeoutMs` (src/client/retry.ts):
   * no broker listening yet (ENOENT, ECONNREFUSED, EAGAIN), a connection
   * closed before the reply, Refused{RATE_LIMITED, SHUTTING_DOWN,
   * FD_PRESSURE} (never before its retry_after_ms). Default: on, 25 ms base,
   * factor 2, full jitter, at most 1 s per wait. `false`: one attempt (and
   * one immediate re-ask when a handoff fell through to a dead daemon).
   */
  retry?: false | ConnectRetryOptions;
  /**
   * The endpoint cache (src/client/endpoint-cache.ts): after a brokered
   * connect, later calls for the same broker, service and version connect
   * straight to the daemon, once the kernel confirms it is still the process
   * the broker vouched for (SO_PEERCRED pid and /proc start time), and fall
   * back to the broker otherwise. Default off: `true` for this call,
   * HANDOFF_ENDPOINT_CACHE=on for the whole process (=off forbids it, even
   * to calls that pass `true`).
   */
  endpointCache?: boolean;
}

export {
  ConnectServiceError,
  type ConnectServiceErrorCode,
} from './connect-service-error.js';
export type { ConnectRetryOptions } from './retry.js';

export interface ServiceConnection {
  /**
   * Yours from here: the library has no listener left on it, so attach an
   * 'error' listener at once. After a handoff it is paused (bytes the daemon
   * sent early are waiting in it): call `resume()` or read it.
   */
  socket: Socket;
  /** 'cache': straight to the daemon, the broker skipped (see `endpointCache`). */
  route: 'handoff' | 'reconnect' | 'cache';
  /** On the 'cache' route: what the broker negotiated on the connect that filled the entry. */
  negotiated: Negotiated;
}

export async function connectService(
  serviceName: string,
  options: ConnectServiceOptions,
): Promise<ServiceConnection> {
  const brokerPath = options.brokerPath ?? defaultBrokerSocketPath();
  const cacheKey = endpointCacheEnabled(options.endpointCache)
    ? endpointCacheKey(brokerPath, serviceName, options.version)
    : null;
  if (cacheKey !== null && options.signal?.aborted !== true) {
    // The hit path first, without the deadline machinery below: it cannot
    // wait (see connectCached). A miss costs nothing but a Map lookup.
    const hit = connectCached(cacheKey, options.initialData, options.signal, () => {
      return new ConnectServiceError('ABORTED', 'connectService aborted', undefined, {
        cause: options.signal?.reason,
      });
    });
    // Usually settled at once (the peer checked as connect() returned): no await then.
    const cached = hit instanceof Promise ? await hit : hit;
    if (cached !== null) {
      noteCacheSession(brokerPath, serviceName);
      return cached;
    }
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const abort = new ConnectCall(serviceName, timeoutMs);
  watchDeadline(abort);
  const outer = options.signal;
  let onOuterAbort: (() => void) | undefined;
  if (outer !== undefined) {
    onOuterAbort = () =>
      abort.cancel(
        new ConnectServiceError('ABORTED', 'connectService aborted', undefined, {
          cause: outer.reason,
        }),
      );
    outer.addEventListener('abort', onOuterAbort, { once: true });
    if (outer.aborted) onOuterAbort();
  }
  try {
    // Through the broker: a Hello, then the handoff or the reconnect route.
    // The first attempt is awaited here rather than in a helper, one async
    // layer fewer on the usual path.
    let brokered: ServiceConnection;
    try {
      brokered = await attempt(serviceName, brokerPath, options, abort);
    } catch (error) {
      brokered = await retryBrokered(
        error,
        serviceName,
        brokerPath,
        options,
        abort,
        abort.expiresAt,
      );
    }
    if (cacheKey !== null) rememberEndpoint(cacheKey, brokerPath, serviceName, brokered.negotiated);
    return brokered;
  } finally {
    unwatchDeadline(abort);
    if (onOuterAbort !== undefined) outer?.removeEventListener('abort', onOuterAbort);
  }
}

/**
 * One call's cancellation, cancelled with TIMEOUT at its deadline (through
 * the shared deadline timer, see deadline-timer.ts) or by the caller's signal.
 */
class ConnectCall extends CallCancellation implements Expiring {
  readonly expiresAt: number;
  deadlineSlot = -1;

  constructor(
    private readonly serviceName: string,
    private readonly timeoutMs: number,
  ) {
    super();
    this.expiresAt = performance.now() + timeoutMs;
  }

  expire(): void {
    this.cancel(
      new ConnectServiceError(
        'TIMEOUT',
        `no connection to ${this.serviceName} within ${this.timeoutMs} ms`,
      ),
    );
  }
}

/** After the first attempt through the broker failed with `error`: the retries. */
async function retryBrokered(
  error: unknown,
  serviceName: string,
  brokerPath: string,
  options: ConnectServiceOptions,
  signal: Cancellable,
  deadline: number,
): Promise<ServiceConnection> {
  const once = () => attempt(serviceName, brokerPath, options, signal);
  if (options.retry === false) {
    // A handoff fell through and the daemon's own socket is dead too (it
    // died mid-handoff), or the broker let go of us before replying: ask
    // the broker once more, which prunes the dead backend and starts a
    // fresh one.
    if (!(error instanceof ConnectServiceError && error.retryable)) throw error;
    return await once().catch((again) => {
      if (again instanceof ConnectServiceError) again.attempts = 2;
      throw again;
    });
  }
  // The back-off is only made once an attempt has failed: the usual call
  // succeeds at once and pays nothing for it.
  return await withBackoff(new ConnectBackoff(options.retry), error, deadline, signal, once);
}

/**
 * The last attempt starts at least this long before the deadline, so that
 * giving up reports what went wrong (CONNECT ENOENT, say) rather than a
 * TIMEOUT that cut an attempt short.
 */
const LAST_ATTEMPT_MARGIN_MS = 50;

/**
 * After the first attempt failed with `first`: runs `once` until it
 * succeeds, fails for good, or the next wait would end too close to
 * `deadline`; the error thrown is the last attempt's, with the number of
 * attempts on it.
 */
async function withBackoff(
  backoff: ConnectBackoff,
  first: unknown,
  deadline: number,
  signal: Cancellable,
  once: () => Promise<ServiceConnection>,
): Promise<ServiceConnection> {
  let error = first;
  for (;;) {
    backoff.attempts++;
    if (!(error instanceof ConnectServiceError)) throw error;
    error.attempts = backoff.attempts;
    const remaining = deadline - performance.now() - LAST_ATTEMPT_MARGIN_MS;
    const delay = backoff.delayAfter(error, remaining);
    if (delay === null) throw error;
    backoff.onRetry?.({ attempt: backoff.attempts, delayMs: delay, error });
    await pause(delay, signal);
    try {
      return await once();
    } catch (again) {
      error = again;
    }
  }
}

/**
 * One try through the broker. Only the wait for the broker's reply is
 * awaited here; what follows is routeOf(), which finishes the usual handoff
 * without another await. An async function keeps every local it has alive
 * across its awaits (V8 sizes its saved frame to all of them), so this one
 * is kept small.
 */
async function attempt(
  serviceName: string,
  brokerPath: string,
  options: ConnectServiceOptions,
  signal: Cancellable,
): Promise<ServiceConnection> {
  const broker = new Conversation(brokerPath, signal, true);
  try {
    // The Hello is encoded and queued while the connect completes (net.Socket
    // writes it on 'connect'), not after a turn spent waiting for it.
    const hello = helloFrame(serviceName, options);
    // Views are cut only where needed: the usual initialData goes out whole.
    const initial = options.initialData ?? NO_BYTES;
    broker.socket.write(
      initial.length === 0
        ? hello
        : Buffer.concat([
            hello,
            initial.length > EAGER_INITIAL_BYTES
              ? initial.subarray(0, EAGER_INITIAL_BYTES)
              : initial,
          ]),
    );
    // No wait for 'connect' of its own: a failed connect surfaces here as
    // CONNECT, like any fault before the reply. Closed or reset before any
    // reply: also how the broker lets go of a client whose handoff a dying
    // daemon never acknowledged. Asking again reaches a respawned one.
    let replyFrame: Frame;
    try {
      replyFrame = await broker.next();
    } catch (error) {
      retryableIfClosed(error);
    }
    const routed = routeOf(broker, replyFrame, serviceName, initial, signal);
    return routed instanceof Promise ? await routed : routed;
  } catch (error) {
    broker.dispose();
    throw error;
  }
}

/**
 * What the broker's reply says to do: throws for a refusal or a bad reply;
 * returns the connection once the handoff is done (usually at once: the
 * relay came with the reply), or a promise for it when the relay is still
 * to come or the route is the reconnect one. `broker` is disposed of by
 * the caller if this throws.
 */
function routeOf(
  broker: Conversation,
  replyFrame: Frame,
  serviceName: string,
  initial: Uint8Array,
  signal: Cancellable,
): ServiceConnection | Promise<ServiceConnection> {
  let reply: HelloReply;
  try {
    reply = HelloReply.decode(replyFrame.payload);
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
    throw new ConnectServiceError('PROTOCOL', 'the broker answered neither Negotiated nor Refused');
  const negotiated = result.value;
  const handoff =
    negotiated.handlePassedToken.length > 0 &&
    (negotiated.serverCapabilities & CAP_HANDLE_PASSING) !== 0n;
  if (!handoff) return reconnect(broker, negotiated, initial, signal);
  // Usually here already: the daemon writes the HelloReply and the relay at
  // once. Only a relay that comes in a later read is waited for.
  const relay = broker.relayNow(negotiated.connectionId);
  if (relay === null) return afterRelay(broker, negotiated, initial, signal);
  return (
    handedOff(broker, relay, negotiated, initial) ?? reconnect(broker, negotiated, initial, signal)
  );
}

/** The handoff whose relay has not come yet: waits for it, then as routeOf. */
async function afterRelay(
  broker: Conversation,
  negotiated: Negotiated,
  initial: Uint8Array,
  signal: Cancellable,
): Promise<ServiceConnection> {
  const relay = await relayOf(broker, negotiated.connectionId);
  return (
    handedOff(broker, relay, negotiated, initial) ??
    (await reconnect(broker, negotiated, initial, signal))
  );
}

/** The connection, if the relay says the daemon accepted it; null if it declined. */
function handedOff(
  broker: Conversation,
  relay: Frame,
  negotiated: Negotiated,
  initial: Uint8Array,
): ServiceConnection | null {
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
  if (!ack.accepted) return null;
  const socket = broker.handBack();
  // The daemon holds the connection now; what was held back follows what it
  // already got, in order. A failure of this write is the caller's to see,
  // on the socket that is now theirs.
  if (initial.length > EAGER_INITIAL_BYTES) socket.write(initial.subarray(EAGER_INITIAL_BYTES));
  return { socket, route: 'handoff', negotiated };
}

/**
 * The reconnect route. The broker forwarded none of our bytes and closes its
 * side now, often with initialData unread: the reset that follows the reply
 * is expected, and its socket is done with either way.
 */
async function reconnect(
  broker: Conversation,
  negotiated: Negotiated,
  initial: Uint8Array,
  signal: Cancellable,
): Promise<ServiceConnection> {
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

const NO_BYTES = new Uint8Array(0);

/**
 * Waits for the relay. Closed before it: the daemon died mid-handoff, and
 * asking again reaches a respawned one.
 */
async function relayOf(broker: Conversation, connectionId: bigint): Promise<Frame> {
  try {
    return await broker.untilRelay(connectionId);
  } catch (error) {
    retryableIfClosed(error);
  }
}

/** Rethrows `error`, marked worth asking the broker again about when the connection closed. */
function retryableIfClosed(error: unknown): never {
  if (error instanceof ConnectServiceError && error.code === 'CLOSED') error.retryable = true;
  throw error;
}
