// One client connection on the broker socket: read the first frame (capped
// at 64 KiB, under a read deadline), hand admin frames to an AdminSession,
// or validate the Hello and route it — a Refused, a Negotiated plus
// reconnect, or a handoff (src/handoff/: the client's socket goes to the
// daemon over its control channel and the broker steps out of the data path).
// Any failure before the ack falls back to reconnect; the client is never
// left past the deadline.
//
// Connections are FdSockets straight from the native accept: the broker
// never needs a stream on them, only a few frames and the fd, and skipping
// net.Socket keeps a Hello's cost to decode, route and one write.
import { closeFds, type FdSocket, type PeerCredentials } from '@handoff/fdpass';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  type Correlation,
  ErrorCode,
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  FramingError,
  Hello,
  HelloReply,
  MAX_HELLO_BYTES,
  Refused,
  responseFrame,
  tryDecodeFramed,
  validateHello,
} from '@handoff/protocol';
import { AdminSession } from './admin-session.js';
import { type Backend, RouteError } from './backend-registry.js';
import { closeWhenFlushed, safeWrite } from './client-socket.js';
import type { ServiceDefinition } from './config/definition.js';
import { concludeHandoff, sendToReconnect } from './handoff/fallback.js';
import { offerHandoff } from './handoff/offer.js';
import { routedClient } from './handoff/routed-client.js';
import { type RouterContext, secondsSince } from './router-context.js';
import { traceContext } from './trace-context.js';

/**
 * The most a broker client socket reads at once. With one read per
 * readiness event (the broker's listener is set up so), the read that
 * completes the Hello holds at least its last byte, so fewer than 64 KiB
 * past it — what a HandoffAcceptor takes with an offer by default — and the
 * rest wait in the kernel, where the handed-off fd takes them along. A Hello
 * at the cap (64 KiB + 5) simply takes two reads.
 */
export const CLIENT_READ_BYTES = MAX_HELLO_BYTES;

/**
 * How the broker's listener must set up client sockets for serveClient:
 * one read per readiness event of at most CLIENT_READ_BYTES (see above),
 * and half-open kept, so a client that half-closes after its request still
 * gets the answer — a Refused for a truncated Hello, admin replies — rather
 * than a write side shut under the router's feet.
 */
export const CLIENT_SOCKET_OPTIONS = {
  readBudget: 1,
  maxMessageSize: CLIENT_READ_BYTES,
  allowHalfOpen: true,
} as const;

/**
 * 'fd-pressure': the connection was accepted on the broker's spare fd while
 * it is out of descriptors; admin still works, anything else is told to
 * come back later.
 */
export type ClientMode = 'normal' | 'fd-pressure';

/**
 * What a connection has sent before its first bytes: shared, as it is only
 * ever replaced, never written, and a Buffer per connection is measurable.
 */
const NOTHING: Buffer = Buffer.alloc(0);

const SETTLED = Promise.resolve();

/** A first frame is a Hello or an admin request: capped at MAX_HELLO_BYTES. */
const HELLO_FRAMING = { maxFrameBytes: MAX_HELLO_BYTES } as const;

export function serveClient(
  socket: FdSocket,
  peer: PeerCredentials,
  ctx: RouterContext,
  mode: ClientMode = 'normal',
): void {
  // Made only when the first read leaves the first frame incomplete, or
  // for an admin session: a Hello that arrives whole is decoded in place.
  let decoder: FrameDecoder | null = null;
  const started = process.hrtime.bigint();
  let done = false;
  // Under fd pressure this connection holds the broker's only spare fd: a
  // client that does not speak at once must not keep it from the next one.
  const underPressure = mode === 'fd-pressure';
  const deadlineMs = underPressure
    ? Math.min(ctx.helloDeadlineMs, FD_PRESSURE_FIRST_FRAME_MS)
    : ctx.helloDeadlineMs;
  // Armed only if the first read leaves the frame incomplete: a Hello that
  // arrives with the connect (the usual case) is answered without a timer.
  let deadline: NodeJS.Timeout | undefined;
  const finish = () => {
    settle();
    socket.off('message', onMessage);
  };
  // Done with the first frame, still listening: a Hello routed to the
  // reconnect route keeps its read watch until the socket closes (stopping
  // it first would cost an epoll_ctl before the reply), and onMessage
  // drops whatever else arrives (see route).
  const settle = () => {
    done = true;
    clearTimeout(deadline);
  };
  socket.on('error', closeOnError);

  // Bytes are gathered so that what follows the Hello can travel with the offer.
  let received: Buffer = NOTHING;
  let admin: AdminSession | null = null;
  const onMessage = ({ data, fds }: { data: Buffer; fds: number[] }) => {
    if (done) {
      // Past the Hello on the reconnect route: the socket closes once the
      // reply is flushed, and nothing more is read from it.
      if (fds.length > 0) closeFds(fds);
      return;
    }
    if (fds.length > 0) {
      // Clients have no business sending us descriptors.
      closeFds(fds);
      finish();
      socket.close();
      return;
    }
    if (admin) {
      admin.push(data);
      return;
    }
    let first: Frame;
    try {
      // The usual case: the whole Hello in the first read. Only it is
      // decoded; whatever follows it is the daemon's.
      const firstRead = received.length === 0;
      const whole = firstRead ? tryDecodeFramed(data, HELLO_FRAMING) : null;
      received = firstRead ? data : Buffer.concat([received, data]);
      if (whole === null || whole.frame.payloadProtocol === ADMIN_PAYLOAD_PROTOCOL) {
        decoder ??= new FrameDecoder(HELLO_FRAMING);
        const frames = decoder.push(data);
        if (frames.length === 0) {
          if (decoder.error) throw decoder.error;
          return;
        }
        first = frames[0]!;
        if (first.payloadProtocol === ADMIN_PAYLOAD_PROTOCOL) {
          // An admin session: answer each admin frame, for as long as the client likes.
          clearTimeout(deadline);
          admin = new AdminSession(socket, decoder, ctx);
          admin.answer(frames);
          received = NOTHING;
          // Bad bytes behind good admin frames: those frames are still
          // answered, then the session ends (as in push()).
          if (decoder.error) admin.stop();
          return;
        }
      } else {
        first = whole.frame;
      }
    } catch (error) {
      finish();
      const code =
        error instanceof FramingError && error.code === 'UNSUPPORTED_FRAMING_VERSION'
          ? ErrorCode.VERSION_UNSUPPORTED
          : ErrorCode.PEER_REJECTED;
      refuse(socket, null, code, `bad first frame: ${(error as Error).message}`, ctx);
      return;
    }
    if (underPressure) {
      finish();
      refuseUnderPressure(socket, first, started, ctx);
      return;
    }
    settle();
    const rest = received.subarray(5 + received.readUInt32LE(1));
    route(socket, peer, first, rest, started, ctx, onMessage);
  };
  socket.on('message', onMessage);
  // An accepted FdSocket makes its first read in the microtask the listener
  // above queued; this one runs after it, and arms the deadline only if
  // the first frame is still to come. (A settled promise's then(), as
  // queueMicrotask would also make an AsyncResource and a bound function.)
  void SETTLED.then(() => {
    if (done || admin !== null || socket.closed) return;
    // Only a timer needs stopping when the socket closes: a Hello that
    // came whole adds no 'close' listener.
    socket.on('close', finish);
    deadline = setTimeout(() => {
      if (done) return;
      finish();
      if (underPressure) {
        refuseUnderPressure(socket, null, started, ctx);
        return;
      }
      refuse(
        socket,
        null,
        ErrorCode.PEER_REJECTED,
        `no complete first frame within ${deadlineMs} ms`,
        ctx,
      );
    }, deadlineMs);
  });
  socket.on('end', () => {
    if (admin) {
      admin.ended();
      return;
    }
    if (done) return;
    finish();
    if (received.length === 0) {
      // Nothing said at all (a port check, a client that changed its mind).
      socket.close();
      return;
    }
    // DESIGN §2.7: a truncated first frame still gets its Refused, since
    // the client's half-close leaves our side writable.
    refuse(
      socket,
      null,
      ErrorCode.PEER_REJECTED,
      `truncated first frame: the client ended after ${received.length} bytes`,
      ctx,
    );
  });
}

/** A client socket's 'error' listener: one function for all, as the socket is `this`. */
function closeOnError(this: FdSocket): void {
  this.close();
}

/** How long a connection on the spare fd may take to send its first frame. */
const FD_PRESSURE_FIRST_FRAME_MS = 1000;

function refuseUnderPressure(
  socket: FdSocket,
  request: Frame | null,
  started: bigint,
  ctx: RouterContext,
): void {
  ctx.observeHello('', 'fd_pressure', secondsSince(started));
  refuse(
    socket,
    request,
    ErrorCode.FD_PRESSURE,
    'the broker is out of file descriptors; retry shortly',
    ctx,
    { retryAfterMs: ctx.fdPressureRetryMs },
  );
}

function refuse(
  socket: FdSocket,
  request: Frame | null,
  code: ErrorCode,
  reason: string,
  ctx: RouterContext,
  extra: { retryAfterMs?: number | undefined; details?: Record<string, string> | undefined } = {},
): void {
  const refused = Refused.create({
    reason,
    code,
    daemonMinProtocol: ctx.daemonMinProtocol,
    daemonMaxProtocol: ctx.daemonMaxProtocol,
    retryAfterMs: BigInt(extra.retryAfterMs ?? 0),
    details: extra.details ?? {},
  });
  const payload = HelloReply.encode({ result: { case: 'refused', value: refused } });
  const correlation: Correlation = request
    ? { ...request, ...traceContext(request) }
    : { payloadProtocol: CONTROL_PAYLOAD_PROTOCOL, requestId: 0n, traceparent: '', tracestate: '' };
  safeWrite(
    socket,
    encodeFramed(
      responseFrame(correlation, { payload, payloadProtocol: CONTROL_PAYLOAD_PROTOCOL }),
    ),
  );
  closeWhenFlushed(socket);
}

function refuseRateLimited(
  socket: FdSocket,
  frame: Frame,
  retryAfterMs: number,
  started: bigint,
  ctx: RouterContext,
): void {
  ctx.observeHello('', 'rate_limited', secondsSince(started), ErrorCode.RATE_LIMITED);
  refuse(
    socket,
    frame,
    ErrorCode.RATE_LIMITED,
    `too many Hellos from this uid; retry in ${retryAfterMs} ms`,
    ctx,
    { retryAfterMs },
  );
}

/**
 * Validates the Hello, picks a definition and a backend, and sends the
 * client on its way. Synchronous up to the reply when the backend is ready
 * (the usual case): no promise is made for a Hello that needs none.
 */
function route(
  socket: FdSocket,
  peer: PeerCredentials,
  frame: Frame,
  rest: Buffer,
  started: bigint,
  ctx: RouterContext,
  onMessage: (message: { data: Buffer; fds: number[] }) => void,
): void {
  // Before any decoding: a uid flooding the broker costs it as little as possible.
  const retryAfterMs = ctx.admitHello(peer.uid);
  if (retryAfterMs !== null) {
    refuseRateLimited(socket, frame, retryAfterMs, started, ctx);
    return;
  }
  const hello = validHello(socket, peer, frame, started, ctx);
  if (!hello) return;
  const decision = ctx.select(hello.serviceName, hello.wantedVersion);
  if (!decision.ok) {
    ctx.observeHello(hello.serviceName, 'refused', secondsSince(started), decision.code);
    refuse(socket, frame, decision.code, decision.reason, ctx, {
      retryAfterMs: decision.retryAfterMs,
    });
    return;
  }
  // A client that may be handed off must leave what it sends next in the
  // kernel, for the daemon; one bound for the reconnect route is closed
  // after its Negotiated, so its read watch can stay until then.
  const mayHandoff =
    (hello.clientCapabilities & CAP_HANDLE_PASSING) !== 0n && decision.definition.handoff;
  if (mayHandoff) {
    // Bytes past the first frame belong to the session with the daemon;
    // the kernel keeps whatever comes next until the daemon reads it.
    socket.off('message', onMessage);
    socket.pause();
  }
  const hop: Hop = {
    socket,
    frame,
    hello,
    definition: decision.definition,
    rest,
    started,
    mayHandoff,
  };
  const ready = ctx.acquireNow?.(decision.definition) ?? null;
  if (ready !== null) {
    sendOnItsWay(hop, ready, ctx);
    return;
  }
  void acquireOrRefuse(hop, ctx).then((backend) => {
    if (backend !== null) sendOnItsWay(hop, backend, ctx);
  });
}

/** A validated Hello on its way to a backend. */
interface Hop {
  socket: FdSocket;
  frame: Frame;
  hello: Hello;
  definition: ServiceDefinition;
  rest: Buffer;
  started: bigint;
  mayHandoff: boolean;
}

/** The reconnect route's Negotiated, or a handoff offer, to `backend`. */
function sendOnItsWay(hop: Hop, backend: Backend, ctx: RouterContext): void {
  const { socket, hello, started } = hop;
  if (socket.closed) return;
  const canHandoff =
    hop.mayHandoff &&
    backend.definition.handoff &&
    backend.channel !== null &&
    !backend.channel.closed;
  const client = routedClient(
    {
      socket,
      frame: hop.frame,
      serviceName: hello.serviceName,
      definition: hop.definition,
      rest: hop.rest,
      canHandoff,
    },
    ctx,
  );
  // Counted once the client's next step is on its way (the Negotiated
  // written, or the offer's sendmsg made in offerHandoff's synchronous
  // part): the metrics work stays off the client's critical path.
  const seconds = secondsSince(started);
  if (!canHandoff) {
    sendToReconnect(client, backend, ctx);
    ctx.observeHello(hello.serviceName, 'reconnect', seconds);
    return;
  }
  const attempt = offerHandoff(client, backend, ctx);
  ctx.observeHello(hello.serviceName, 'handoff', seconds);
  void attempt.then((outcome) => concludeHandoff(client, outcome, ctx));
}

/** The Hello in `frame`, or null once the client has been refused for it. */
function validHello(
  socket: FdSocket,
  peer: PeerCredentials,
  frame: Frame,
  started: bigint,
  ctx: RouterContext,
): Hello | null {
  if (frame.payloadProtocol !== CONTROL_PAYLOAD_PROTOCOL || frame.kind !== FrameKind.REQUEST) {
    ctx.observeHello('', 'rejected', secondsSince(started));
    refuse(
      socket,
      frame,
      ErrorCode.PEER_REJECTED,
      `first frame must be a Hello (payload protocol 0x0000), got ${frame.payloadProtocol}`,
      ctx,
    );
    return null;
  }
  let hello: Hello;
  try {
    hello = Hello.decode(frame.payload);
  } catch {
    ctx.observeHello('', 'rejected', secondsSince(started));
    refuse(socket, frame, ErrorCode.PEER_REJECTED, 'Hello does not decode', ctx);
    return null;
  }
  const verdict = validateHello(hello, { peerPid: peer.pid });
  if (!verdict.ok) {
    ctx.observeHello(
      hello.serviceName.slice(0, 64),
      'refused',
      secondsSince(started),
      verdict.code,
    );
    refuse(socket, frame, verdict.code, verdict.reason, ctx);
    return null;
  }
  return hello;
}

/**
 * A backend for the Hello's definition, or null once the client has been
 * refused (spawn failed, rate limited, shutting down).
 */
async function acquireOrRefuse(hop: Hop, ctx: RouterContext): Promise<Backend | null> {
  const { socket, frame, hello, started } = hop;
  try {
    return await ctx.acquire(hop.definition);
  } catch (error) {
    const e =
      error instanceof RouteError
        ? error
        : new RouteError(ErrorCode.INTERNAL, (error as Error).message);
    ctx.observeHello(
      hello.serviceName,
      e.refusalCode === ErrorCode.RATE_LIMITED
        ? 'rate_limited'
        : e.refusalCode === ErrorCode.SHUTTING_DOWN
          ? 'refused'
          : 'spawn_failed',
      secondsSince(started),
      e.refusalCode,
    );
    refuse(socket, frame, e.refusalCode, e.message, ctx, {
      retryAfterMs: e.retryAfterMs,
      details: e.details,
    });
    return null;
  }
}
