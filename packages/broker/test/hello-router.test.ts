// The router on its own: a real socket pair per client (the test holds the
// client end), a real BackendChannel whose daemon end the test plays, and
// a RouterContext whose routing decisions the test chooses. What is under
// test is what the router writes, closes and reports.
import { once } from 'node:events';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { FdSocket, peerCredentials } from '@handoff/fdpass';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminReply,
  AdminReplyKind,
  AdminRequest,
  AdminVerb,
  CAP_HANDLE_PASSING,
  CHANNEL_CAP_CLIENT_PRELUDE,
  CHANNEL_CAP_OFFER_WITH_FD,
  CONTROL_PAYLOAD_PROTOCOL,
  ErrorCode,
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  HandoffOffer,
  Hello,
  HelloReply,
  MAX_HELLO_BYTES,
  requestFrame,
  responseFrame,
} from '@handoff/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { type Backend, RouteError } from '../src/backend-registry.js';
import { parseServiceDefinition } from '../src/config/definition.js';
import { BackendChannel } from '../src/handoff/control-channel.js';
import { HandoffTokenPool } from '../src/handoff/token-pool.js';
import { type ClientMode, serveClient } from '../src/hello-router.js';
import type { RouterContext } from '../src/router-context.js';
import { registrationMessage } from './channel-registration.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const definition = parseServiceDefinition(
  { name: 'echo', version: '1.0.0', command: '/bin/true' },
  'test',
);

const open: FdSocket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});
const track = <T extends FdSocket>(socket: T): T => {
  open.push(socket);
  return socket;
};

interface Observed {
  hellos: [string, string][];
  handoffs: string[];
  logs: string[];
}

function context(overrides: Partial<RouterContext> = {}): RouterContext & { seen: Observed } {
  const seen: Observed = { hellos: [], handoffs: [], logs: [] };
  let ids = 0n;
  return {
    select: () => ({ ok: true, definition }),
    acquire: async () => {
      throw new RouteError(ErrorCode.INTERNAL, 'no backend in this test');
    },
    admin: async (request) =>
      AdminReply.create({
        kind: AdminReplyKind.TEXT,
        body: `verb ${request.verb}`,
        exitCode: 0,
      }),
    nextConnectionId: () => ++ids,
    tokens: new HandoffTokenPool(),
    helloDeadlineMs: 2000,
    handoffDeadlineMs: 500,
    fdPressureRetryMs: 250,
    admitHello: () => null,
    daemonMinProtocol: 1,
    daemonMaxProtocol: 1,
    observeHello: (service, outcome) => void seen.hellos.push([service, outcome]),
    observeHandoff: (outcome) => void seen.handoffs.push(outcome),
    log: (_level, _fields, message) => void seen.logs.push(message),
    ...overrides,
    seen,
  };
}

/** A client connected to a router-served socket; collects whole frames until it closes. */
function client(ctx: RouterContext, mode: ClientMode = 'normal') {
  const [ours, theirs] = FdSocket.pair('stream');
  track(ours);
  track(theirs);
  serveClient(theirs, peerCredentials(theirs), ctx, mode);
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  let closed = false;
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  ours.on('message', ({ data }: { data: Buffer }) => {
    frames.push(...decoder.push(data));
    wake();
  });
  ours.on('end', () => {
    closed = true;
    wake();
  });
  ours.on('error', () => {});
  return {
    socket: ours,
    /** The router's end, as the broker's listener would have accepted it. */
    served: theirs,
    send: (bytes: Uint8Array) => ours.write(bytes),
    frames,
    /** Resolves once `n` frames arrived (or the router closed first). */
    async frame(n = 1): Promise<Frame[]> {
      while (frames.length < n && !closed) await new Promise<void>((r) => waiters.push(r));
      return frames.slice(0, n);
    },
    async closedByRouter(): Promise<void> {
      while (!closed) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

const hello = (patch: Partial<Hello> = {}, frame: Partial<Frame> = {}) =>
  encodeFramed(
    requestFrame({
      payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
      requestId: 7n,
      ...frame,
      payload: Hello.encode({
        clientMinProtocol: 1,
        clientMaxProtocol: 1,
        serviceName: 'echo',
        wantedVersion: '1.0.0',
        ...patch,
      }),
    }),
  );

const replyOf = (frame: Frame) => HelloReply.decode(frame.payload).result;
const refusedCode = (frame: Frame) => {
  const result = replyOf(frame);
  return result.case === 'refused' ? result.value.code : undefined;
};

describe('first frame', () => {
  it('a bad framing byte is refused with VERSION_UNSUPPORTED, and the connection closed', async () => {
    const c = client(context());
    c.send(new Uint8Array([9, 0, 0, 0, 0]));
    const [reply] = await c.frame();
    expect(refusedCode(reply!)).toBe(ErrorCode.VERSION_UNSUPPORTED);
    await c.closedByRouter();
  });

  it('a first frame over 64 KiB is refused with PEER_REJECTED before it is read', async () => {
    const c = client(context());
    const header = Buffer.alloc(5);
    header[0] = 1;
    header.writeUInt32LE(MAX_HELLO_BYTES + 1, 1);
    c.send(header);
    const [reply] = await c.frame();
    expect(refusedCode(reply!)).toBe(ErrorCode.PEER_REJECTED);
  });

  it('a first frame that is not a Hello request is refused; the request id is echoed', async () => {
    const c = client(context());
    c.send(encodeFramed(requestFrame({ payloadProtocol: 0xf001, requestId: 42n })));
    const [reply] = await c.frame();
    expect(refusedCode(reply!)).toBe(ErrorCode.PEER_REJECTED);
    expect(reply!.requestId).toBe(42n);
  });

  it('an invalid Hello is refused with the validation code and counted as refused', async () => {
    const ctx = context();
    const c = client(ctx);
    c.send(hello({ clientMinProtocol: 2, clientMaxProtocol: 3 }));
    const [reply] = await c.frame();
    expect(refusedCode(reply!)).toBe(ErrorCode.VERSION_UNSUPPORTED);
    expect(ctx.seen.hellos).toEqual([['echo', 'refused']]);
  });

  it('a client that never finishes its first frame is refused at the deadline', async () => {
    const c = client(context({ helloDeadlineMs: 100 }));
    c.send(hello().subarray(0, 8));
    const t0 = performance.now();
    const [reply] = await c.frame();
    expect(refusedCode(reply!)).toBe(ErrorCode.PEER_REJECTED);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    await c.closedByRouter();
  });

  it('a connection closed mid-frame (the broker shutting down, say) takes its deadline timer with it', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const settled = async (want: number) => {
      for (let i = 0; i < 200 && timers() !== want; i++)
        await new Promise((resolve) => setImmediate(resolve));
      return timers();
    };
    const before = timers();
    const c = client(context({ helloDeadlineMs: 60_000 }));
    c.send(hello().subarray(0, 8));
    // The first read leaves the frame incomplete: the deadline is armed...
    expect(await settled(before + 1)).toBe(before + 1);
    // The broker cuts the connection (ClientConnections.closeAll): no
    // 'end' comes, and the timer must not hold the process for a minute.
    c.served.close();
    expect(await settled(before)).toBe(before);
  });

  it('a Hello that arrives a few bytes at a time is routed as one that arrives whole', async () => {
    const { backend } = await daemonChannel('prelude');
    const c = client(context({ acquireNow: () => backend }));
    const bytes = hello();
    for (let at = 0; at < bytes.length; at += 3) {
      c.send(bytes.subarray(at, at + 3));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const [reply] = await c.frame();
    expect(replyOf(reply!)).toMatchObject({ case: 'negotiated', value: { connectionId: 1n } });
    expect(reply!.requestId).toBe(7n);
  });

  it('bytes that are no frame behind a whole Hello do not stop it: the router leaves them to the daemon', async () => {
    const { backend } = await daemonChannel('prelude');
    for (const after of [
      new Uint8Array([9, 9, 9, 9, 9, 9]),
      Buffer.from([1, 0xff, 0xff, 0xff, 0x7f]),
      Buffer.from([1, 3, 0, 0, 0, 0xff, 0xff, 0xff]),
    ]) {
      const ctx = context({ acquireNow: () => backend });
      const c = client(ctx);
      c.send(Buffer.concat([hello(), after]));
      const [reply] = await c.frame();
      expect(replyOf(reply!).case).toBe('negotiated');
      expect(ctx.seen.hellos).toEqual([['echo', 'reconnect']]);
    }
  });

  it('a whole first frame whose body is not a Frame is refused with PEER_REJECTED', async () => {
    const ctx = context();
    const c = client(ctx);
    c.send(Buffer.from([1, 4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
    const [reply] = await c.frame();
    expect(refusedCode(reply!)).toBe(ErrorCode.PEER_REJECTED);
    expect(replyOf(reply!)).toMatchObject({
      value: { reason: expect.stringMatching(/^bad first frame: /) },
    });
    await c.closedByRouter();
  });

  it('descriptors sent by a client are closed and so is the connection', async () => {
    const c = client(context());
    const before = readdirSync('/proc/self/fd').length;
    const file = openSync('/dev/null', 'r');
    c.socket.write(hello(), [file]);
    closeSync(file);
    await c.closedByRouter();
    expect(c.frames).toHaveLength(0);
    expect(readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before);
  });
});

describe('routing decisions', () => {
  it('a policy refusal carries its code and retry_after_ms', async () => {
    const c = client(
      context({
        select: () => ({
          ok: false,
          code: ErrorCode.VERSION_BLOCKED,
          reason: 'blocked',
          retryAfterMs: 1234,
        }),
      }),
    );
    c.send(hello());
    const [reply] = await c.frame();
    expect(replyOf(reply!)).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.VERSION_BLOCKED, retryAfterMs: 1234n },
    });
  });

  it('a spawn that is rate limited is refused with RATE_LIMITED and counted so', async () => {
    const ctx = context({
      acquire: async () => {
        throw new RouteError(ErrorCode.RATE_LIMITED, 'budget spent', 9000, { attempts: '3' });
      },
    });
    const c = client(ctx);
    c.send(hello());
    const [reply] = await c.frame();
    expect(replyOf(reply!)).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.RATE_LIMITED, retryAfterMs: 9000n, details: { attempts: '3' } },
    });
    expect(ctx.seen.hellos).toEqual([['echo', 'rate_limited']]);
  });

  it('without the capability bit: Negotiated with no token, then the router closes (reconnect)', async () => {
    const { backend } = await daemonChannel('prelude');
    const ctx = context({ acquire: async () => backend });
    const c = client(ctx);
    c.send(hello());
    const [reply] = await c.frame();
    const result = replyOf(reply!);
    expect(result.case).toBe('negotiated');
    if (result.case === 'negotiated') {
      expect(result.value.handlePassedToken).toHaveLength(0);
      expect(result.value.backendPipe).toBe('/run/echo.sock');
    }
    await c.closedByRouter();
    expect(ctx.seen.handoffs).toEqual(['reconnect']);
  });

  it('routes to the backend acquireNow gives without calling acquire', async () => {
    const { backend } = await daemonChannel('prelude');
    let asked = 0;
    const ctx = context({
      acquireNow: () => backend,
      acquire: async () => {
        asked++;
        throw new RouteError(ErrorCode.INTERNAL, 'acquire must not be called');
      },
    });
    const c = client(ctx);
    c.send(hello());
    const [reply] = await c.frame();
    expect(replyOf(reply!)).toMatchObject({
      case: 'negotiated',
      value: { backendPipe: '/run/echo.sock' },
    });
    await c.closedByRouter();
    expect(asked).toBe(0);
  });

  it('falls back to acquire when acquireNow has no backend ready', async () => {
    const { backend } = await daemonChannel('prelude');
    let asked = 0;
    const ctx = context({
      acquireNow: () => null,
      acquire: async () => {
        asked++;
        return backend;
      },
    });
    const c = client(ctx);
    c.send(hello());
    const [reply] = await c.frame();
    expect(replyOf(reply!).case).toBe('negotiated');
    expect(asked).toBe(1);
  });

  it('under fd pressure: Hellos get FD_PRESSURE with the retry hint; admin is still answered', async () => {
    const ctx = context();
    const c = client(ctx, 'fd-pressure');
    c.send(hello());
    const [reply] = await c.frame();
    expect(replyOf(reply!)).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.FD_PRESSURE, retryAfterMs: 250n },
    });
    const admin = client(ctx, 'fd-pressure');
    admin.send(adminFrame(AdminVerb.STATUS, 1n));
    const [answer] = await admin.frame();
    expect(AdminReply.decode(answer!.payload).body).toBe(`verb ${AdminVerb.STATUS}`);
  });
});

const adminFrame = (verb: AdminVerb, requestId: bigint) =>
  encodeFramed(
    requestFrame({
      payloadProtocol: ADMIN_PAYLOAD_PROTOCOL,
      requestId,
      payload: AdminRequest.encode({ verb }),
    }),
  );

describe('admin sessions', () => {
  it('answers each admin frame on the connection, by request id', async () => {
    const c = client(context());
    c.send(Buffer.concat([adminFrame(AdminVerb.STATUS, 1n), adminFrame(AdminVerb.HEALTHZ, 2n)]));
    c.send(adminFrame(AdminVerb.METRICS, 3n));
    const frames = await c.frame(3);
    expect(frames.map((f) => f.requestId)).toEqual([1n, 2n, 3n]);
    expect(frames.map((f) => AdminReply.decode(f.payload).body)).toEqual([
      `verb ${AdminVerb.STATUS}`,
      `verb ${AdminVerb.HEALTHZ}`,
      `verb ${AdminVerb.METRICS}`,
    ]);
  });

  it('a non-admin frame inside an admin session closes it', async () => {
    const c = client(context());
    c.send(adminFrame(AdminVerb.STATUS, 1n));
    await c.frame();
    c.send(hello());
    await c.closedByRouter();
    expect(c.frames).toHaveLength(1);
  });
});

/**
 * A backend whose daemon end the test plays. `kind` decides what it
 * registered: 'prelude' (our SDK's capabilities) or 'plain' (none).
 */
async function daemonChannel(kind: 'prelude' | 'plain') {
  const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
  track(brokerEnd);
  track(daemonEnd);
  const channel = new BackendChannel(brokerEnd);
  const registered = once(channel, 'registered');
  daemonEnd.write(
    registrationMessage({
      namespaceId: 'echo',
      path: '/run/echo.sock',
      channelCapabilities:
        kind === 'prelude' ? CHANNEL_CAP_CLIENT_PRELUDE | CHANNEL_CAP_OFFER_WITH_FD : 0n,
    }),
  );
  await registered;
  const backend: Backend = {
    key: 'echo@1.0.0',
    definition,
    endpoint: '/run/echo.sock',
    child: null,
    pid: null,
    channel,
    identity: null,
    state: 'ready',
    startedAt: Date.now(),
    lastRoutedAt: 0,
    routed: 0,
    channelLost: false,
    output: null,
  };
  /** Resolves with the next offer: its frame, the fd that came with it, and the token. */
  const nextOffer = () =>
    new Promise<{ frame: Frame; offer: HandoffOffer; fd: number }>((resolve) => {
      let fd = -1;
      const decoder = new FrameDecoder();
      const onMessage = ({ data, fds }: { data: Buffer; fds: number[] }) => {
        let bytes = data;
        if (fds.length > 0) {
          fd = fds[0]!;
          bytes = data.subarray(16);
        }
        for (const frame of decoder.push(bytes)) {
          daemonEnd.off('message', onMessage);
          track(FdSocket.adopt(fd));
          resolve({ frame, offer: HandoffOffer.decode(frame.payload), fd });
        }
      };
      daemonEnd.on('message', onMessage);
    });
  const ack = (frame: Frame, offer: HandoffOffer, accepted: boolean, preludeWritten = false) =>
    daemonEnd.write(
      encodeFramed(
        responseFrame(
          { ...frame, requestId: offer.correlationId },
          {
            payload: HandoffAck.encode({
              token: offer.token,
              accepted,
              errorDetail: accepted ? '' : 'no thanks',
              correlationId: offer.correlationId,
              preludeWritten,
            }),
          },
        ),
      ),
    );
  return { backend, daemonEnd, nextOffer, ack };
}

const handoffHello = (frame: Partial<Frame> = {}) =>
  hello({ clientCapabilities: CAP_HANDLE_PASSING }, frame);

describe('handoff', () => {
  it('to a backend that writes preludes: one offer with the fd, the client hears only the daemon', async () => {
    const d = await daemonChannel('prelude');
    const ctx = context({ acquire: async () => d.backend });
    const c = client(ctx);
    const request = encodeFramed(requestFrame({ payloadProtocol: 0xf001, requestId: 9n }));
    c.send(Buffer.concat([handoffHello({ traceparent: TRACEPARENT }), request]));
    const { frame, offer } = await d.nextOffer();
    expect(frame.traceparent).toBe(TRACEPARENT);
    expect(Buffer.from(offer.bufferedClientBytes)).toEqual(Buffer.from(request));
    // The prelude is Negotiated + the accepted relay, as the broker would send them.
    const prelude = new FrameDecoder().push(offer.clientPrelude);
    expect(prelude.map((f) => [f.kind, f.payloadProtocol])).toEqual([
      [FrameKind.RESPONSE, CONTROL_PAYLOAD_PROTOCOL],
      [FrameKind.EVENT, HANDOFF_PAYLOAD_PROTOCOL],
    ]);
    expect(prelude[0]!.traceparent).toBe(TRACEPARENT);
    expect(HandoffAck.decode(prelude[1]!.payload)).toMatchObject({ accepted: true });
    // Nothing reached the client from the broker so far.
    expect(c.frames).toHaveLength(0);
    d.ack(frame, offer, true, true);
    // Once the "daemon" is done with its copy, the client sees EOF only if
    // the router closed its own without writing anything more.
    open.at(-1)!.close();
    await c.closedByRouter();
    expect(c.frames).toHaveLength(0);
    expect(ctx.seen.handoffs).toEqual(['accepted']);
  });

  it('to a plain backend: Negotiated first, the offer, then the accepted relay from the broker', async () => {
    const d = await daemonChannel('plain');
    const ctx = context({ acquire: async () => d.backend });
    const c = client(ctx);
    c.send(handoffHello());
    const [negotiated] = await c.frame();
    expect(replyOf(negotiated!).case).toBe('negotiated');
    const { frame, offer } = await d.nextOffer();
    expect(offer.clientPrelude).toHaveLength(0);
    d.ack(frame, offer, true);
    const frames = await c.frame(2);
    expect(frames[1]!.kind).toBe(FrameKind.EVENT);
    expect(HandoffAck.decode(frames[1]!.payload)).toMatchObject({ accepted: true });
  });

  it('refused twice (a second offer to a live backend): Negotiated + relay{accepted: false} for reconnect', async () => {
    const d = await daemonChannel('prelude');
    const ctx = context({ acquire: async () => d.backend });
    const c = client(ctx);
    c.send(handoffHello());
    for (let i = 0; i < 2; i++) {
      const { frame, offer } = await d.nextOffer();
      d.ack(frame, offer, false);
    }
    const frames = await c.frame(2);
    expect(replyOf(frames[0]!).case).toBe('negotiated');
    expect(HandoffAck.decode(frames[1]!.payload)).toMatchObject({
      accepted: false,
      errorDetail: 'no thanks',
    });
    expect(ctx.seen.handoffs).toEqual(['fallback']);
  });

  it('no ack from a prelude backend (it died holding the fd): the client is released without a byte', async () => {
    const d = await daemonChannel('prelude');
    const ctx = context({ acquire: async () => d.backend, handoffDeadlineMs: 100 });
    const c = client(ctx);
    c.send(handoffHello());
    await d.nextOffer();
    // The "daemon" dies: its copy of the client fd goes; the router's copy
    // goes at the ack deadline, so the client sees EOF and nothing else.
    const adopted = open.at(-1)!;
    adopted.close();
    await c.closedByRouter();
    expect(c.frames).toHaveLength(0);
    expect(ctx.seen.logs).toContain('handoff unacknowledged; client released');
  });

  it('an invalid traceparent is dropped, not carried to the daemon', async () => {
    const d = await daemonChannel('prelude');
    const c = client(context({ acquire: async () => d.backend }));
    c.send(handoffHello({ traceparent: 'not-a-trace', tracestate: 'x=1' }));
    const { frame, offer } = await d.nextOffer();
    expect(frame.traceparent).toBe('');
    expect(frame.tracestate).toBe('');
    d.ack(frame, offer, true, true);
  });
});
