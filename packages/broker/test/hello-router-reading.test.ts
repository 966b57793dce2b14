// When the router stops reading a client (issue 17): a Hello bound for the
// reconnect route keeps its read watch until the socket closes (no epoll_ctl
// before the reply), so what else that client sends is read and dropped —
// descriptors closed — while one that may be handed off is not read past
// its Hello: late bytes wait in the kernel and reach the daemon with the fd.
import { closeSync, openSync, readdirSync } from 'node:fs';
import { FdSocket, peerCredentials } from '@handoff/fdpass';
import {
  CAP_HANDLE_PASSING,
  CHANNEL_CAP_CLIENT_PRELUDE,
  CHANNEL_CAP_OFFER_WITH_FD,
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  type Frame,
  FrameDecoder,
  HandoffAck,
  HandoffOffer,
  Hello,
  HelloReply,
  requestFrame,
  responseFrame,
} from '@handoff/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend-registry.js';
import { parseServiceDefinition } from '../src/config/definition.js';
import { BackendChannel } from '../src/handoff/control-channel.js';
import { serveClient } from '../src/hello-router.js';
import type { RouterContext } from '../src/router-context.js';
import { routerContext } from './admin-harness.js';
import { registrationMessage } from './channel-registration.js';

const open: FdSocket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});
const track = (socket: FdSocket): FdSocket => {
  open.push(socket);
  return socket;
};

const definition = (handoff: boolean) =>
  parseServiceDefinition({ name: 'echo', version: '1.0.0', command: '/bin/true', handoff }, 'test');

/** A backend acquired only when the test says so: Hellos wait on it meanwhile. */
function gatedContext(handoff: boolean) {
  const def = definition(handoff);
  let release!: (backend: Backend) => void;
  const gate = new Promise<Backend>((resolve) => {
    release = resolve;
  });
  let ids = 0n;
  const handoffs: string[] = [];
  const ctx = routerContext({
    select: () => ({ ok: true, definition: def }),
    acquire: () => gate,
    nextConnectionId: () => ++ids,
    helloDeadlineMs: 2000,
    observeHandoff: (outcome) => void handoffs.push(outcome),
  });
  return { ctx, def, release, handoffs };
}

/** The client's end of a router-served socket pair, collecting frames until EOF. */
function client(ctx: RouterContext) {
  const [ours, theirs] = FdSocket.pair('stream');
  track(ours);
  track(theirs);
  serveClient(theirs, peerCredentials(theirs), ctx);
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  const ended = new Promise<void>((resolve) => ours.once('end', () => resolve()));
  ours.on('message', ({ data }: { data: Buffer }) => void frames.push(...decoder.push(data)));
  ours.on('error', () => {});
  return { socket: ours, frames, ended };
}

const hello = (capabilities: bigint) =>
  encodeFramed(
    requestFrame({
      payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
      requestId: 7n,
      payload: Hello.encode({
        clientMinProtocol: 1,
        clientMaxProtocol: 1,
        serviceName: 'echo',
        wantedVersion: '1.0.0',
        clientCapabilities: capabilities,
      }),
    }),
  );

/** Resolves after `n` loop turns: time for the router to read whatever was sent. */
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

function backendOn(channel: BackendChannel | null, def: Backend['definition']): Backend {
  return {
    key: 'echo@1.0.0',
    definition: def,
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
}

describe('reading past the Hello', () => {
  it('reconnect route: bytes and fds sent while the backend is acquired are dropped, fds closed', async () => {
    const { ctx, def, release, handoffs } = gatedContext(false);
    const c = client(ctx);
    c.socket.write(hello(0n));
    await turns(5);
    const before = readdirSync('/proc/self/fd').length;
    const file = openSync('/dev/null', 'r');
    c.socket.write(Buffer.from('late bytes'), [file]);
    closeSync(file);
    await turns(5);
    // The router read the late message (it still watches this socket) and
    // closed the fd that came with it: our copy is closed, theirs must be too.
    expect(readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before);
    release(backendOn(null, def));
    await c.ended;
    expect(c.frames).toHaveLength(1);
    const reply = HelloReply.decode(c.frames[0]!.payload).result;
    expect(reply.case).toBe('negotiated');
    expect(handoffs).toEqual(['reconnect']);
  });

  it('handoff route: bytes sent while the backend is acquired stay in the kernel for the daemon', async () => {
    const { ctx, def, release, handoffs } = gatedContext(true);
    const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
    track(brokerEnd);
    track(daemonEnd);
    const channel = new BackendChannel(brokerEnd);
    daemonEnd.write(
      registrationMessage({
        namespaceId: 'echo',
        path: '/run/echo.sock',
        channelCapabilities: CHANNEL_CAP_CLIENT_PRELUDE | CHANNEL_CAP_OFFER_WITH_FD,
      }),
    );
    await new Promise((resolve) => channel.once('registered', resolve));
    const c = client(ctx);
    c.socket.write(hello(CAP_HANDLE_PASSING));
    await turns(5);
    c.socket.write(Buffer.from('late bytes'));
    await turns(5);
    const offered = new Promise<{ frame: Frame; offer: HandoffOffer; fd: number }>((resolve) => {
      const decoder = new FrameDecoder();
      let fd = -1;
      daemonEnd.on('message', ({ data, fds }: { data: Buffer; fds: number[] }) => {
        let bytes = data;
        if (fds.length > 0) {
          fd = fds[0]!;
          bytes = data.subarray(16);
        }
        for (const frame of decoder.push(bytes))
          resolve({ frame, offer: HandoffOffer.decode(frame.payload), fd });
      });
    });
    release(backendOn(channel, def));
    const { frame, offer, fd } = await offered;
    expect(offer.bufferedClientBytes).toHaveLength(0);
    // The daemon's copy of the client fd holds the late bytes: the router never read them.
    const adopted = track(FdSocket.adopt(fd));
    const [late] = (await new Promise<{ data: Buffer }[]>((resolve) =>
      adopted.once('message', (m: { data: Buffer }) => resolve([m])),
    )) as [{ data: Buffer }];
    expect(late.data.toString()).toBe('late bytes');
    daemonEnd.write(
      encodeFramed(
        responseFrame(
          { ...frame, requestId: offer.correlationId },
          {
            payload: HandoffAck.encode({
              token: offer.token,
              accepted: true,
              errorDetail: '',
              correlationId: offer.correlationId,
              preludeWritten: true,
            }),
          },
        ),
      ),
    );
    await new Promise<void>((resolve) => {
      const check = () => (handoffs.length > 0 ? resolve() : setImmediate(check));
      check();
    });
    expect(handoffs).toEqual(['accepted']);
  });
});
