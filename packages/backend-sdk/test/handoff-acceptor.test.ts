import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FdSocket, fdOf, type SocketKind } from '@handoff/fdpass';
import {
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  HandoffOffer,
  requestFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type DaemonIdentity,
  type DaemonServer,
  FrameClient,
  HandoffAcceptor,
  listenForHandoffs,
  type ServeDaemonOptions,
  serveDaemon,
} from '../src/index.js';
import { identityFor, openFds, str, tempDir, text } from './harness.js';

const P = 0xf001;
const tmp = tempDir('handoff');
let identity: DaemonIdentity;
let daemon: DaemonServer;
let clientListener: Server;
const accepted: Socket[] = [];
const cleanup: (() => void)[] = [];

beforeAll(async () => {
  identity = await identityFor(tmp.path('daemon.sock'));
  daemon = await serveDaemon({
    endpoint: tmp.path('daemon.sock'),
    identity,
    payloadProtocols: [P],
    onRequest: (f) => f.payload,
  });
  // Where clients connect first: the "broker" side of the test.
  clientListener = createServer({ pauseOnConnect: true }, (s) => accepted.push(s));
  await new Promise<void>((r) => clientListener.listen(tmp.path('broker.sock'), r));
}, 60_000);
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});
afterAll(async () => {
  clientListener.close();
  await daemon.close({ deadlineMs: 100 });
  tmp.remove();
});

/** The broker's half: sends token+fd, then the offer; collects acks. */
class FakeBroker {
  readonly acks: HandoffAck[] = [];
  private readonly decoder = new FrameDecoder();
  constructor(readonly channel: FdSocket) {
    channel.on('message', ({ data }: { data: Buffer }) => {
      for (const f of this.decoder.push(data)) {
        expect(f.kind).toBe(FrameKind.RESPONSE);
        expect(f.payloadProtocol).toBe(HANDOFF_PAYLOAD_PROTOCOL);
        const ack = HandoffAck.decode(f.payload);
        expect(f.requestId).toBe(ack.correlationId);
        this.acks.push(ack);
      }
    });
  }
  sendFd(token: Uint8Array, fd: number): void {
    this.channel.write(token, [fd]);
  }
  sendOffer(offer: Partial<HandoffOffer>): void {
    const frame: Frame = requestFrame({
      payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
      requestId: offer.correlationId ?? 0n,
      payload: HandoffOffer.encode(offer),
    });
    this.channel.write(encodeFramed(frame));
  }
}

function setup(kind: SocketKind, options: { serviceName?: string; offerTimeoutMs?: number } = {}) {
  const [brokerEnd, daemonEnd] = FdSocket.pair(kind);
  const acceptor = new HandoffAcceptor(daemonEnd, { server: daemon, ...options });
  const errors: Error[] = [];
  acceptor.on('error', (e: Error) => errors.push(e));
  const rejected: string[] = [];
  acceptor.on('rejected', (r: { reason: string }) => rejected.push(r.reason));
  cleanup.push(() => {
    acceptor.close();
    brokerEnd.close();
  });
  return { broker: new FakeBroker(brokerEnd), acceptor, errors, rejected };
}

/** Waits until connections of earlier tests have finished closing, for a stable fd count. */
async function settled(): Promise<void> {
  await expect.poll(() => daemon.connectionCount).toBe(0);
  await new Promise((r) => setTimeout(r, 20));
}

/** A client connected to the broker socket, and the broker's accepted copy. */
async function clientAtBroker(): Promise<{ client: FrameClient; brokerSide: Socket }> {
  const n = accepted.length;
  const client = await FrameClient.connect(tmp.path('broker.sock'));
  cleanup.push(() => client.close());
  await expect.poll(() => accepted.length).toBe(n + 1);
  return { client, brokerSide: accepted[n]! };
}

/** A daemon of its own (not the shared one) behind an acceptor, and the fake broker on its channel. */
async function ownDaemon(name: string, onRequest: ServeDaemonOptions['onRequest']) {
  const endpoint = tmp.path(name);
  const server = await serveDaemon({
    endpoint,
    identity: await identityFor(endpoint),
    payloadProtocols: [P],
    onRequest,
  });
  const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
  const acceptor = new HandoffAcceptor(daemonEnd, { server });
  cleanup.push(() => {
    acceptor.close();
    brokerEnd.close();
  });
  return { server, broker: new FakeBroker(brokerEnd) };
}

/** A raw client at the broker socket with the frames it receives, and the broker's accepted copy. */
async function rawClientAtBroker() {
  const n = accepted.length;
  const raw = connect(tmp.path('broker.sock'));
  cleanup.push(() => raw.destroy());
  await expect.poll(() => accepted.length).toBe(n + 1);
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  raw.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  return { raw, frames, brokerSide: accepted[n]! };
}

describe('HandoffAcceptor, our channel extensions (seqpacket)', () => {
  it('takes token + offer in the fd message and writes the client prelude before its answers, then acks', async () => {
    const { broker } = setup('seqpacket', { serviceName: 'demo' });
    // A raw client, so the test sees exactly the bytes that reach it.
    const { frames, brokerSide } = await rawClientAtBroker();
    // The client's first request came with its Hello: the broker read it.
    const request = encodeFramed(
      requestFrame({ payloadProtocol: P, requestId: 5n, payload: text('first') }),
    );
    const prelude = encodeFramed(
      requestFrame({ payloadProtocol: 0x7777, requestId: 99n, payload: text('from the broker') }),
    );
    const token = randomBytes(16);
    const offer = encodeFramed(
      requestFrame({
        payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
        requestId: 43n,
        payload: HandoffOffer.encode({
          token,
          serviceName: 'demo',
          correlationId: 43n,
          bufferedClientBytes: request,
          clientPrelude: prelude,
        }),
      }),
    );
    broker.channel.write(Buffer.concat([token, offer]), [fdOf(brokerSide)]);
    brokerSide.destroy();
    await expect.poll(() => frames.length).toBe(2);
    expect(frames.map((f) => [f.requestId, str(f.payload)])).toEqual([
      [99n, 'from the broker'],
      [5n, 'first'],
    ]);
    await expect.poll(() => broker.acks.length).toBe(1);
    expect(broker.acks[0]).toMatchObject({
      accepted: true,
      correlationId: 43n,
      preludeWritten: true,
    });
  });
});

describe('HandoffAcceptor and a client that ended its side', () => {
  it('answers a request whose client half-closed before the handoff, then ends', async () => {
    // The client sent its request with its Hello and shut its side: the
    // daemon adopts a socket already at end of stream, and still owes an
    // answer that an async handler produces later.
    const { server: slow, broker } = await ownDaemon('slow.sock', async (f) => {
      await new Promise((r) => setTimeout(r, 50));
      return f.payload;
    });
    const { raw, frames, brokerSide } = await rawClientAtBroker();
    const request = encodeFramed(
      requestFrame({ payloadProtocol: P, requestId: 7n, payload: text('late') }),
    );
    raw.end(request);
    brokerSide.resume();
    const [firstBytes] = (await once(brokerSide, 'data')) as [Buffer];
    brokerSide.pause();
    const token = randomBytes(16);
    broker.sendFd(token, fdOf(brokerSide));
    broker.sendOffer({ token, correlationId: 9n, bufferedClientBytes: firstBytes });
    brokerSide.destroy();
    await once(raw, 'end');
    expect(frames.map((f) => [f.requestId, str(f.payload)])).toEqual([[7n, 'late']]);
    await expect.poll(() => broker.acks.length).toBe(1);
    expect(broker.acks[0]).toMatchObject({ accepted: true, correlationId: 9n });
    await expect.poll(() => slow.connectionCount).toBe(0);
    await slow.close({ deadlineMs: 100 });
  });
});

describe('HandoffAcceptor and a daemon that is closing', () => {
  it('acks accepted: false (so the broker falls back) and closes the fd', async () => {
    const { server: closing, broker } = await ownDaemon('closing.sock', (f) => f.payload);
    const done = closing.close({ deadlineMs: 100 });
    const { brokerSide } = await clientAtBroker();
    const token = randomBytes(16);
    broker.sendFd(token, fdOf(brokerSide));
    broker.sendOffer({ token, correlationId: 8n });
    brokerSide.destroy();
    await expect.poll(() => broker.acks.length).toBe(1);
    expect(broker.acks[0]).toMatchObject({ accepted: false, preludeWritten: false });
    expect(broker.acks[0]!.errorDetail).toMatch(/refused the connection/);
    await done;
  });
});

describe.each(['stream', 'seqpacket'] as const)('HandoffAcceptor over %s', (kind) => {
  it('adopts the client connection; bytes read by the broker are served first', async () => {
    const { broker } = setup(kind, { serviceName: 'demo' });
    const { client, brokerSide } = await clientAtBroker();
    const early = client.request(P, text('sent-before-handoff'));
    // The broker read the client's first request before handing off.
    brokerSide.resume();
    const [firstBytes] = (await once(brokerSide, 'data')) as [Buffer];
    brokerSide.pause();
    const token = randomBytes(16);
    broker.sendFd(token, fdOf(brokerSide));
    broker.sendOffer({
      token,
      serviceName: 'demo',
      correlationId: 42n,
      bufferedClientBytes: firstBytes,
    });
    brokerSide.destroy(); // the broker's copy only
    expect(str((await early).payload)).toBe('sent-before-handoff');
    expect(str((await client.request(P, text('after'))).payload)).toBe('after');
    await expect.poll(() => broker.acks.length).toBe(1);
    expect(broker.acks[0]).toMatchObject({ accepted: true, correlationId: 42n, errorDetail: '' });
    expect(Buffer.from(broker.acks[0]!.token)).toEqual(token);
  });

  it('refuses and closes on a mismatched token, a reused token, or another service', async () => {
    await settled();
    const before = openFds();
    const { broker, rejected } = setup(kind, { serviceName: 'demo' });
    const cases: [string, (t: Buffer) => Partial<HandoffOffer>][] = [
      ['token does not match', () => ({ token: randomBytes(16), serviceName: 'demo' })],
      ['serves', (t) => ({ token: t, serviceName: 'other' })],
    ];
    for (const [reason, offer] of cases) {
      const { brokerSide } = await clientAtBroker();
      const token = randomBytes(16);
      broker.sendFd(token, fdOf(brokerSide));
      broker.sendOffer({ correlationId: 7n, ...offer(token) });
      await expect.poll(() => rejected.at(-1) ?? '').toContain(reason);
      brokerSide.destroy();
    }
    // A token accepted once can never be used again.
    const first = await clientAtBroker();
    const token = randomBytes(16);
    broker.sendFd(token, fdOf(first.brokerSide));
    broker.sendOffer({ token, serviceName: 'demo', correlationId: 1n });
    first.brokerSide.destroy();
    const second = await clientAtBroker();
    broker.sendFd(token, fdOf(second.brokerSide));
    broker.sendOffer({ token, serviceName: 'demo', correlationId: 2n });
    second.brokerSide.destroy();
    await expect.poll(() => rejected.at(-1) ?? '').toContain('already used');
    await expect
      .poll(() => broker.acks.map((a) => a.accepted))
      .toEqual([false, false, true, false]);
    for (const c of cleanup.splice(0)) c();
    await expect.poll(openFds).toBe(before);
  });

  it('refuses an offer without an fd, and closes an fd whose offer never comes', async () => {
    await settled();
    const before = openFds();
    const { broker, rejected } = setup(kind, { offerTimeoutMs: 50 });
    broker.sendOffer({ token: randomBytes(16), correlationId: 3n });
    await expect.poll(() => rejected).toContain('offer without a client fd');
    const { brokerSide } = await clientAtBroker();
    const closed = once(brokerSide, 'close');
    broker.sendFd(randomBytes(16), fdOf(brokerSide));
    await expect.poll(() => rejected.length).toBe(2);
    expect(rejected[1]).toContain('no offer within 50 ms');
    brokerSide.destroy();
    await closed;
    for (const c of cleanup.splice(0)) c();
    await expect.poll(openFds).toBe(before);
  });
});

describe('handoff at scale and over a dialled endpoint', () => {
  it('closes a control channel whose peer is not an allowed uid', async () => {
    const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
    cleanup.push(() => brokerEnd.close());
    const acceptor = new HandoffAcceptor(daemonEnd, { server: daemon, allowedUids: [12345] });
    const [error] = (await once(acceptor, 'error')) as [Error];
    expect(error.message).toContain('not allowed');
    expect(daemonEnd.closed).toBe(true);
  });

  it('adopts 1,000 handed-off connections and leaks no fd', async () => {
    await settled();
    const before = openFds();
    const { broker } = setup('seqpacket');
    for (let i = 0; i < 1000; i++) {
      const { client, brokerSide } = await clientAtBroker();
      const token = randomBytes(16);
      broker.sendFd(token, fdOf(brokerSide));
      broker.sendOffer({ token, correlationId: BigInt(i + 1) });
      brokerSide.destroy();
      if (i % 100 === 0)
        expect(str((await client.request(P, text(`c${i}`))).payload)).toBe(`c${i}`);
      client.close();
    }
    await expect.poll(() => broker.acks.length, { timeout: 20_000 }).toBe(1000);
    expect(broker.acks.every((a) => a.accepted)).toBe(true);
    for (const c of cleanup.splice(0)) c();
    accepted.length = 0;
    await expect.poll(() => daemon.connectionCount).toBe(0);
    await expect.poll(openFds).toBe(before);
  }, 60_000);

  it("accepts the reference's one-dial-per-handoff variant", async () => {
    const endpoint = await listenForHandoffs(tmp.path('handoff.sock'), { server: daemon });
    cleanup.push(() => endpoint.close());
    const channel = await FdSocket.connect(tmp.path('handoff.sock'), { kind: 'stream' });
    const broker = new FakeBroker(channel);
    cleanup.push(() => channel.close());
    const { client, brokerSide } = await clientAtBroker();
    const token = randomBytes(16);
    broker.sendFd(token, fdOf(brokerSide));
    broker.sendOffer({ token, serviceName: 'any', correlationId: 9n });
    brokerSide.destroy();
    await expect.poll(() => broker.acks.length).toBe(1);
    expect(broker.acks[0]!.accepted).toBe(true);
    expect(str((await client.request(P, text('dialled'))).payload)).toBe('dialled');
  });
});
