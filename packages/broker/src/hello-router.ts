// One client connection on the broker socket: read the first frame (capped
// at 64 KiB, under a read deadline), answer admin frames, or validate the
// Hello and route it — a Refused, a Negotiated plus reconnect, or a
// handoff: the client's socket goes to the daemon over its control channel
// and the broker steps out of the data path. Any failure before the ack
// falls back to reconnect; the client is never left past the deadline.
//
// Connections are FdSockets straight from the native accept: the broker
// never needs a stream on them, only a few frames and the fd, and skipping
// net.Socket keeps a Hello's cost to decode, route and one write.
import { randomFillSync } from 'node:crypto';
import { closeFds, type FdSocket, type PeerCredentials } from '@handoff/fdpass';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminReply,
  AdminRequest,
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  type Correlation,
  ErrorCode,
  encodeFramed,
  eventFrame,
  type Frame,
  FrameDecoder,
  FrameKind,
  FramingError,
  HANDOFF_PAYLOAD_PROTOCOL,
  HANDOFF_TOKEN_BYTES,
  HandoffAck,
  Hello,
  HelloReply,
  MAX_HELLO_BYTES,
  Negotiated,
  PROTOCOL_VERSION,
  Refused,
  responseFrame,
  validateHello,
} from '@handoff/protocol';
import { type Backend, RouteError } from './backend-registry.js';
import type { OfferOutcome } from './control-channel.js';
import type { ServiceDefinition } from './service-config.js';
import { traceContext } from './trace-context.js';

export interface RouteDecision {
  ok: true;
  definition: ServiceDefinition;
}
export interface RouteRefusal {
  ok: false;
  code: ErrorCode;
  reason: string;
  retryAfterMs?: number;
}

export type HelloOutcome =
  | 'handoff'
  | 'reconnect'
  | 'refused'
  | 'rejected'
  | 'rate_limited'
  | 'spawn_failed'
  | 'fd_pressure';

/** What the router needs from the broker around it. */
export interface RouterContext {
  select(name: string, wantedVersion: string): RouteDecision | RouteRefusal;
  acquire(definition: ServiceDefinition): Promise<Backend>;
  admin(request: AdminRequest): Promise<AdminReply>;
  nextConnectionId(): bigint;
  helloDeadlineMs: number;
  handoffDeadlineMs: number;
  /** The retry hint sent with Refused{FD_PRESSURE}. */
  fdPressureRetryMs: number;
  daemonMinProtocol: number;
  daemonMaxProtocol: number;
  /** Observations for metrics and logs. */
  observeHello(service: string, outcome: HelloOutcome, seconds: number): void;
  observeHandoff(outcome: 'accepted' | 'fallback' | 'reconnect', seconds: number): void;
  log(level: 'info' | 'warn' | 'debug', fields: Record<string, unknown>, message: string): void;
}

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

export function serveClient(
  socket: FdSocket,
  peer: PeerCredentials,
  ctx: RouterContext,
  mode: ClientMode = 'normal',
): void {
  const decoder = new FrameDecoder({ maxFrameBytes: MAX_HELLO_BYTES });
  const started = process.hrtime.bigint();
  let done = false;
  // Under fd pressure this connection holds the broker's only spare fd: a
  // client that does not speak at once must not keep it from the next one.
  const underPressure = mode === 'fd-pressure';
  const deadlineMs = underPressure
    ? Math.min(ctx.helloDeadlineMs, FD_PRESSURE_FIRST_FRAME_MS)
    : ctx.helloDeadlineMs;
  const deadline = setTimeout(() => {
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
  const finish = () => {
    done = true;
    clearTimeout(deadline);
    socket.off('message', onMessage);
  };
  socket.on('error', () => socket.close());
  socket.on('close', finish);

  // Bytes are gathered so that what follows the Hello can travel with the offer.
  let received: Buffer = Buffer.alloc(0);
  let admin: AdminSession | null = null;
  const onMessage = ({ data, fds }: { data: Buffer; fds: number[] }) => {
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
    received = received.length === 0 ? data : Buffer.concat([received, data]);
    let frames: Frame[];
    try {
      frames = decoder.push(data);
    } catch (error) {
      finish();
      const code =
        error instanceof FramingError && error.code === 'UNSUPPORTED_FRAMING_VERSION'
          ? ErrorCode.VERSION_UNSUPPORTED
          : ErrorCode.PEER_REJECTED;
      refuse(socket, null, code, `bad first frame: ${(error as Error).message}`, ctx);
      return;
    }
    if (frames.length === 0) {
      if (decoder.error) {
        finish();
        refuse(
          socket,
          null,
          ErrorCode.PEER_REJECTED,
          `bad first frame: ${decoder.error.message}`,
          ctx,
        );
      }
      return;
    }
    const first = frames[0]!;
    if (first.payloadProtocol === ADMIN_PAYLOAD_PROTOCOL) {
      // An admin session: answer each admin frame, for as long as the client likes.
      clearTimeout(deadline);
      admin = new AdminSession(socket, decoder, ctx);
      admin.answer(frames);
      received = Buffer.alloc(0);
      // Bad bytes behind good admin frames: those frames are still
      // answered, then the session ends (as in push()).
      if (decoder.error) admin.stop();
      return;
    }
    finish();
    if (underPressure) {
      refuseUnderPressure(socket, first, started, ctx);
      return;
    }
    // Bytes past the first frame belong to the session with the daemon; the
    // kernel keeps whatever comes next until the daemon reads it.
    socket.pause();
    const rest = received.subarray(5 + received.readUInt32LE(1));
    void route(socket, peer, first, rest, started, ctx);
  };
  socket.on('message', onMessage);
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

/**
 * Handoff tokens come from a pool the CSPRNG refills 256 tokens at a time:
 * one getrandom per 256 handoffs instead of one each. Each token is copied
 * out, so a token never aliases the pool that is refilled under it.
 */
const tokenPool = new Uint8Array(HANDOFF_TOKEN_BYTES * 256);
let tokenOffset = tokenPool.length;

function nextToken(): Uint8Array {
  if (tokenOffset === tokenPool.length) {
    randomFillSync(tokenPool);
    tokenOffset = 0;
  }
  const token = tokenPool.slice(tokenOffset, tokenOffset + HANDOFF_TOKEN_BYTES);
  tokenOffset += HANDOFF_TOKEN_BYTES;
  return token;
}

/** How long a connection on the spare fd may take to send its first frame. */
const FD_PRESSURE_FIRST_FRAME_MS = 1000;

function refuseUnderPressure(
  socket: FdSocket,
  request: Frame | null,
  started: bigint,
  ctx: RouterContext,
): void {
  ctx.observeHello('', 'fd_pressure', seconds(started));
  refuse(
    socket,
    request,
    ErrorCode.FD_PRESSURE,
    'the broker is out of file descriptors; retry shortly',
    ctx,
    { retryAfterMs: ctx.fdPressureRetryMs },
  );
}

function seconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Admin frames on a broker connection: answered in order, until the client closes. */
class AdminSession {
  private inFlight = 0;
  private peerEnded = false;
  constructor(
    private readonly socket: FdSocket,
    private readonly decoder: FrameDecoder,
    private readonly ctx: RouterContext,
  ) {}

  push(data: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(data);
    } catch {
      this.stop();
      return;
    }
    this.answer(frames);
    if (this.decoder.error) this.stop();
  }

  /** Reads no more; closes once the answers already owed are written. */
  stop(): void {
    this.socket.pause();
    this.ended();
  }

  answer(frames: Frame[]): void {
    for (const frame of frames) void this.answerOne(frame);
  }

  ended(): void {
    this.peerEnded = true;
    if (this.inFlight === 0) closeWhenFlushed(this.socket);
  }

  private async answerOne(frame: Frame): Promise<void> {
    if (frame.payloadProtocol !== ADMIN_PAYLOAD_PROTOCOL || frame.kind !== FrameKind.REQUEST) {
      this.socket.close();
      return;
    }
    let request: AdminRequest;
    try {
      request = AdminRequest.decode(frame.payload);
    } catch {
      this.socket.close();
      return;
    }
    this.inFlight++;
    const reply = await this.ctx.admin(request);
    this.inFlight--;
    if (this.socket.closed) return;
    safeWrite(
      this.socket,
      encodeFramed(responseFrame(frame, { payload: AdminReply.encode(reply) })),
    );
    if (this.peerEnded && this.inFlight === 0) closeWhenFlushed(this.socket);
  }
}

/** Writes, or closes the socket if the kernel refuses the bytes outright. */
function safeWrite(socket: FdSocket, bytes: Uint8Array): void {
  if (socket.closed) return;
  try {
    socket.write(bytes);
  } catch {
    socket.close();
  }
}

/** Closes once everything written has reached the kernel (never waits past 5 s). */
function closeWhenFlushed(socket: FdSocket): void {
  if (socket.closed) return;
  if (socket.writableLength === 0) {
    socket.close();
    return;
  }
  const timer = setTimeout(() => socket.close(), 5000);
  timer.unref();
  socket.once('drain', () => {
    clearTimeout(timer);
    socket.close();
  });
}

/** Resolves once what was written has reached the kernel, false if the socket closed first. */
function flushed(socket: FdSocket): Promise<boolean> {
  if (socket.closed) return Promise.resolve(false);
  if (socket.writableLength === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onDrain = () => {
      socket.off('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      socket.off('drain', onDrain);
      resolve(false);
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
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

async function route(
  socket: FdSocket,
  peer: PeerCredentials,
  frame: Frame,
  rest: Buffer,
  started: bigint,
  ctx: RouterContext,
): Promise<void> {
  if (frame.payloadProtocol !== CONTROL_PAYLOAD_PROTOCOL || frame.kind !== FrameKind.REQUEST) {
    ctx.observeHello('', 'rejected', seconds(started));
    refuse(
      socket,
      frame,
      ErrorCode.PEER_REJECTED,
      `first frame must be a Hello (payload protocol 0x0000), got ${frame.payloadProtocol}`,
      ctx,
    );
    return;
  }
  let hello: Hello;
  try {
    hello = Hello.decode(frame.payload);
  } catch {
    ctx.observeHello('', 'rejected', seconds(started));
    refuse(socket, frame, ErrorCode.PEER_REJECTED, 'Hello does not decode', ctx);
    return;
  }
  const verdict = validateHello(hello, { peerPid: peer.pid });
  if (!verdict.ok) {
    ctx.observeHello(hello.serviceName.slice(0, 64), 'refused', seconds(started));
    refuse(socket, frame, verdict.code, verdict.reason, ctx);
    return;
  }
  const trace = traceContext(frame);
  const decision = ctx.select(hello.serviceName, hello.wantedVersion);
  if (!decision.ok) {
    ctx.observeHello(hello.serviceName, 'refused', seconds(started));
    refuse(socket, frame, decision.code, decision.reason, ctx, {
      retryAfterMs: decision.retryAfterMs,
    });
    return;
  }
  let backend: Backend;
  try {
    backend = await ctx.acquire(decision.definition);
  } catch (error) {
    const e =
      error instanceof RouteError
        ? error
        : new RouteError(ErrorCode.INTERNAL, (error as Error).message);
    ctx.observeHello(
      hello.serviceName,
      e.code === ErrorCode.RATE_LIMITED
        ? 'rate_limited'
        : e.code === ErrorCode.SHUTTING_DOWN
          ? 'refused'
          : 'spawn_failed',
      seconds(started),
    );
    refuse(socket, frame, e.code, e.message, ctx, {
      retryAfterMs: e.retryAfterMs,
      details: e.details,
    });
    return;
  }
  if (socket.closed) return;
  const connectionId = ctx.nextConnectionId();
  const canHandoff =
    (hello.clientCapabilities & CAP_HANDLE_PASSING) !== 0n &&
    backend.definition.handoff &&
    backend.channel !== null &&
    !backend.channel.closed;
  const token = canHandoff ? nextToken() : new Uint8Array(0);
  const correlation: Correlation = { ...frame, ...trace };
  const negotiatedFor = (target: Backend) =>
    encodeFramed(
      responseFrame(correlation, {
        payload: HelloReply.encode({
          result: {
            case: 'negotiated',
            value: Negotiated.create({
              negotiatedProtocol: PROTOCOL_VERSION,
              daemonVersion: target.definition.version,
              backendPipe: target.endpoint,
              serverCapabilities: canHandoff ? CAP_HANDLE_PASSING : 0n,
              handlePassedToken: token,
              connectionId,
            }),
          },
        }),
      }),
    );
  const relayFor = (accepted: boolean, reason: string) =>
    encodeFramed(
      eventFrame(
        { payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL, requestId: connectionId, ...trace },
        {
          payload: HandoffAck.encode({
            token,
            accepted,
            errorDetail: reason,
            correlationId: connectionId,
          }),
        },
      ),
    );
  const logFields = {
    service: hello.serviceName,
    connection_id: String(connectionId),
    ...(trace.traceparent ? { traceparent: trace.traceparent } : {}),
  };
  ctx.observeHello(hello.serviceName, canHandoff ? 'handoff' : 'reconnect', seconds(started));
  if (!canHandoff) {
    safeWrite(socket, negotiatedFor(backend));
    ctx.observeHandoff('reconnect', 0);
    ctx.log('debug', logFields, 'routed: reconnect');
    closeWhenFlushed(socket);
    return;
  }
  const handoffStart = process.hrtime.bigint();
  // A backend that writes client preludes sends the client our Negotiated
  // and the accepted relay itself, ahead of its answers to the bytes that
  // came with the Hello: the client hears one write, from the daemon. Any
  // other backend gets the reference sequence — Negotiated from us now, the
  // relay from us after its ack.
  let negotiatedSent = false;
  const offerTo = async (target: Backend): Promise<OfferOutcome> => {
    const channel = target.channel!;
    let prelude: Uint8Array = new Uint8Array(0);
    if (channel.writesPrelude) {
      const relay = relayFor(true, '');
      prelude = negotiatedSent ? relay : Buffer.concat([negotiatedFor(target), relay]);
    } else if (!negotiatedSent) {
      safeWrite(socket, negotiatedFor(target));
      negotiatedSent = true;
      // The reply must be in the client's socket before the daemon can
      // write to it; on a fresh connection it always is, but make sure.
      if (!(await flushed(socket)))
        return { accepted: false, reason: 'client went away', fate: 'not-sent' };
    }
    return channel.offer(
      socket.fd,
      {
        token,
        serviceName: hello.serviceName,
        correlationId: connectionId,
        bufferedClientBytes: rest,
        clientPrelude: prelude,
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
      },
      ctx.handoffDeadlineMs,
    );
  };
  // Given a prelude, a backend that took the fd and never answered (it died
  // or stalled) may have adopted the client and told it so: a relay or a
  // second offer from us could land in the middle of its session. Let go —
  // if nobody took the client it sees the connection close before any
  // reply, and asks the broker again (connectService does), which respawns.
  const letGo = (outcome: OfferOutcome, prelude: boolean) =>
    !outcome.accepted && outcome.fate === 'unknown' && prelude;
  let prelude = backend.channel!.writesPrelude;
  let outcome = await offerTo(backend);
  if (!outcome.accepted && !letGo(outcome, prelude) && !socket.closed) {
    // The backend refused, or the fd never reached it (its channel broke):
    // a client sent to its socket now could land in a dying listener. Get a
    // live backend for the same service — respawned if need be, at the same
    // endpoint — and offer once more before falling back.
    try {
      const next = await ctx.acquire(decision.definition);
      if (next.channel && !next.channel.closed && !socket.closed) {
        prelude = next.channel.writesPrelude;
        backend = next;
        outcome = await offerTo(next);
      }
    } catch (error) {
      ctx.log(
        'warn',
        { ...logFields, err: (error as Error).message },
        'no backend for a second offer',
      );
    }
  }
  ctx.observeHandoff(outcome.accepted ? 'accepted' : 'fallback', seconds(handoffStart));
  if (letGo(outcome, prelude)) {
    ctx.log(
      'warn',
      { ...logFields, reason: (outcome as { reason: string }).reason },
      'handoff unacknowledged; client released',
    );
    socket.close();
    return;
  }
  if (outcome.accepted && outcome.preludeWritten) {
    // The daemon told the client everything; our copy of the fd just goes.
    ctx.log('debug', logFields, 'routed: handoff');
    socket.close();
    return;
  }
  if (outcome.accepted) ctx.log('debug', logFields, 'routed: handoff');
  else ctx.log('warn', { ...logFields, reason: outcome.reason }, 'handoff fell back to reconnect');
  // The relay tells the client whether to keep talking on this socket (now
  // the daemon's) or to reconnect to backend_pipe. Then our copy goes.
  const reply = relayFor(outcome.accepted, outcome.accepted ? '' : outcome.reason);
  safeWrite(socket, negotiatedSent ? reply : Buffer.concat([negotiatedFor(backend), reply]));
  closeWhenFlushed(socket);
}
