// One client connection on the broker socket: read the first frame (capped
// at 64 KiB, under a read deadline), answer admin frames, or validate the
// Hello and route it — a Refused, a Negotiated plus reconnect, or a
// handoff: the client's socket goes to the daemon over its control channel
// and the broker steps out of the data path. Any failure before the ack
// falls back to reconnect; the client is never left past the deadline.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { fdOf, type PeerCredentials } from '@handoff/fdpass';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminReply,
  AdminRequest,
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
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
import type { ServiceDefinition } from './service-config.js';

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

/** What the router needs from the broker around it. */
export interface RouterContext {
  select(name: string, wantedVersion: string): RouteDecision | RouteRefusal;
  acquire(definition: ServiceDefinition): Promise<Backend>;
  admin(request: AdminRequest): Promise<AdminReply>;
  nextConnectionId(): bigint;
  helloDeadlineMs: number;
  handoffDeadlineMs: number;
  daemonMinProtocol: number;
  daemonMaxProtocol: number;
  /** Observations for metrics and logs. */
  observeHello(service: string, outcome: string, seconds: number): void;
  observeHandoff(outcome: 'accepted' | 'fallback' | 'reconnect', seconds: number): void;
  log(level: 'info' | 'warn' | 'debug', fields: Record<string, unknown>, message: string): void;
}

export function serveClient(socket: Socket, peer: PeerCredentials, ctx: RouterContext): void {
  const decoder = new FrameDecoder({ maxFrameBytes: MAX_HELLO_BYTES });
  const started = process.hrtime.bigint();
  let done = false;
  const deadline = setTimeout(() => {
    if (done) return;
    finish();
    refuse(
      socket,
      null,
      ErrorCode.PEER_REJECTED,
      `no complete first frame within ${ctx.helloDeadlineMs} ms`,
      ctx,
    );
  }, ctx.helloDeadlineMs);
  const finish = () => {
    done = true;
    clearTimeout(deadline);
    socket.off('data', onData);
  };
  socket.on('error', () => {});
  socket.on('close', () => finish());

  // Bytes are gathered so that what follows the Hello can travel with the offer.
  let received: Buffer = Buffer.alloc(0);
  let adminMode = false;
  const onData = (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
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
    const [first] = frames;
    if (first!.payloadProtocol === ADMIN_PAYLOAD_PROTOCOL || adminMode) {
      // An admin session: answer each admin frame, for as long as the client likes.
      adminMode = true;
      clearTimeout(deadline);
      for (const frame of frames) void answerAdmin(socket, frame, ctx);
      received = Buffer.alloc(0);
      return;
    }
    finish();
    socket.pause();
    // Bytes past the first frame belong to the session with the daemon.
    const helloLength = encodedLength(first!, received);
    const rest = received.subarray(helloLength);
    void route(socket, peer, first!, rest, started, ctx);
  };
  socket.on('data', onData);
  socket.resume();
}

/** The framed length of the first frame in `received` (header + body). */
function encodedLength(_frame: Frame, received: Buffer): number {
  return 5 + received.readUInt32LE(1);
}

async function answerAdmin(socket: Socket, frame: Frame, ctx: RouterContext): Promise<void> {
  if (frame.payloadProtocol !== ADMIN_PAYLOAD_PROTOCOL || frame.kind !== FrameKind.REQUEST) {
    socket.destroy();
    return;
  }
  let request: AdminRequest;
  try {
    request = AdminRequest.decode(frame.payload);
  } catch {
    socket.destroy();
    return;
  }
  const reply = await ctx.admin(request);
  if (!socket.destroyed) {
    socket.write(encodeFramed(responseFrame(frame, { payload: AdminReply.encode(reply) })));
  }
}

function refuse(
  socket: Socket,
  request: Frame | null,
  code: ErrorCode,
  reason: string,
  ctx: RouterContext,
  extra: { retryAfterMs?: number; details?: Record<string, string> } = {},
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
  const correlation = request ?? {
    payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
    requestId: 0n,
    traceparent: '',
    tracestate: '',
  };
  if (!socket.destroyed)
    socket.end(
      encodeFramed(
        responseFrame(correlation, { payload, payloadProtocol: CONTROL_PAYLOAD_PROTOCOL }),
      ),
    );
}

async function route(
  socket: Socket,
  peer: PeerCredentials,
  frame: Frame,
  rest: Buffer,
  started: bigint,
  ctx: RouterContext,
): Promise<void> {
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  if (frame.payloadProtocol !== CONTROL_PAYLOAD_PROTOCOL || frame.kind !== FrameKind.REQUEST) {
    ctx.observeHello('', 'rejected', seconds());
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
    ctx.observeHello('', 'rejected', seconds());
    refuse(socket, frame, ErrorCode.PEER_REJECTED, 'Hello does not decode', ctx);
    return;
  }
  const verdict = validateHello(hello, { peerPid: peer.pid });
  if (!verdict.ok) {
    ctx.observeHello(hello.serviceName.slice(0, 64), 'refused', seconds());
    refuse(socket, frame, verdict.code, verdict.reason, ctx);
    return;
  }
  const decision = ctx.select(hello.serviceName, hello.wantedVersion);
  if (!decision.ok) {
    ctx.observeHello(hello.serviceName, 'refused', seconds());
    refuse(
      socket,
      frame,
      decision.code,
      decision.reason,
      ctx,
      decision.retryAfterMs === undefined ? {} : { retryAfterMs: decision.retryAfterMs },
    );
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
      e.code === ErrorCode.RATE_LIMITED ? 'rate_limited' : 'spawn_failed',
      seconds(),
    );
    refuse(socket, frame, e.code, e.message, ctx, {
      retryAfterMs: e.retryAfterMs,
      details: e.details,
    });
    return;
  }
  if (socket.destroyed) return;
  const connectionId = ctx.nextConnectionId();
  const canHandoff =
    (hello.clientCapabilities & CAP_HANDLE_PASSING) !== 0n &&
    backend.definition.handoff &&
    backend.channel !== null &&
    !backend.channel.closed;
  const token = canHandoff ? new Uint8Array(randomBytes(HANDOFF_TOKEN_BYTES)) : new Uint8Array(0);
  const negotiated = Negotiated.create({
    negotiatedProtocol: PROTOCOL_VERSION,
    daemonVersion: backend.definition.version,
    backendPipe: backend.endpoint,
    serverCapabilities: canHandoff ? CAP_HANDLE_PASSING : 0n,
    handlePassedToken: token,
    connectionId,
  });
  socket.write(
    encodeFramed(
      responseFrame(frame, {
        payload: HelloReply.encode({ result: { case: 'negotiated', value: negotiated } }),
      }),
    ),
  );
  ctx.observeHello(hello.serviceName, canHandoff ? 'handoff' : 'reconnect', seconds());
  if (!canHandoff) {
    ctx.observeHandoff('reconnect', 0);
    socket.end();
    return;
  }
  const handoffStart = process.hrtime.bigint();
  const offer = {
    token,
    serviceName: hello.serviceName,
    correlationId: connectionId,
    bufferedClientBytes: rest,
  };
  let outcome = await backend.channel!.offer(fdOf(socket), offer, ctx.handoffDeadlineMs);
  if (!outcome.accepted && !socket.destroyed) {
    // The backend may have died mid-handoff (its channel closed, or no ack):
    // a client sent to its socket now could land in a dying listener. Get a
    // live backend for the same service — respawned if need be, at the same
    // endpoint — and offer once more before falling back.
    try {
      const next = await ctx.acquire(decision.definition);
      if (next.channel && !next.channel.closed && !socket.destroyed) {
        outcome = await next.channel.offer(fdOf(socket), offer, ctx.handoffDeadlineMs);
      }
    } catch (error) {
      ctx.log(
        'warn',
        { service: hello.serviceName, err: (error as Error).message },
        'no backend for a second offer',
      );
    }
  }
  // The relay tells the client whether to keep talking on this socket (now
  // the daemon's) or to reconnect to backend_pipe. Then our copy goes.
  const relay = eventFrame(
    {
      payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
      requestId: connectionId,
      traceparent: frame.traceparent,
      tracestate: frame.tracestate,
    },
    {
      payload: HandoffAck.encode({
        token,
        accepted: outcome.accepted,
        errorDetail: outcome.accepted ? '' : outcome.reason,
        correlationId: connectionId,
      }),
    },
  );
  ctx.observeHandoff(
    outcome.accepted ? 'accepted' : 'fallback',
    Number(process.hrtime.bigint() - handoffStart) / 1e9,
  );
  if (!outcome.accepted)
    ctx.log(
      'warn',
      { service: hello.serviceName, reason: outcome.reason },
      'handoff fell back to reconnect',
    );
  if (!socket.destroyed) {
    socket.write(encodeFramed(relay), () => socket.destroy());
  }
}
