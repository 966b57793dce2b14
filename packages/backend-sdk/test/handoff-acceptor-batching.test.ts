// The per-offer costs of HandoffAcceptor (src/handoff-acceptor.ts), over a
// real seqpacket channel, real client connections and a real daemon: acks
// of offers read in one batch leave in one message; an fd whose offer came
// in its own message waits under no timer, while one whose offer is late
// still does (and is closed at offerTimeoutMs if the offer never comes).
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FdSocket, fdOf } from '@handoff/fdpass';
import {
  encodeFramed,
  type Frame,
  FrameDecoder,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  HandoffOffer,
  requestFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DaemonServer, HandoffAcceptor, serveDaemon } from '../src/index.js';
import { identityFor, openFds, str, tempDir, text } from './harness.js';

const P = 0xf001;
const tmp = tempDir('handoff-batching');
let daemon: DaemonServer;
let clientListener: Server;
const accepted: Socket[] = [];
const cleanup: (() => void)[] = [];

beforeAll(async () => {
  daemon = await serveDaemon({
    endpoint: tmp.path('daemon.sock'),
    identity: await identityFor(tmp.path('daemon.sock')),
    payloadProtocols: [P],
    onRequest: (f) => f.payload,
  });
  clientListener = createServer({ pauseOnConnect: true }, (s) => accepted.push(s));
  await new Promise<void>((r) => clientListener.listen(tmp.path('broker.sock'), r));
}, 60_000);
afterEach(() => {
  vi.restoreAllMocks();
  for (const c of cleanup.splice(0)) c();
});
afterAll(async () => {
  clientListener.close();
  await daemon.close({ deadlineMs: 100 });
  tmp.remove();
});

/** A raw client at the "broker" socket, the broker's accepted copy, and the frames the client hears. */
async function client(): Promise<{ brokerSide: Socket; heard: Frame[] }> {
  const n = accepted.length;
  const raw = connect(tmp.path('broker.sock'));
  cleanup.push(() => raw.destroy());
  await expect.poll(() => accepted.length).toBe(n + 1);
  const heard: Frame[] = [];
  const decoder = new FrameDecoder();
  raw.on('data', (chunk: Buffer) => heard.push(...decoder.push(chunk)));
  return { brokerSide: accepted[n]!, heard };
}

function offerFrame(token: Uint8Array, id: bigint, request: string): Uint8Array {
  return encodeFramed(
    requestFrame({
      payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
      requestId: id,
      payload: HandoffOffer.encode({
        token,
        serviceName: 'demo',
        correlationId: id,
        bufferedClientBytes: encodeFramed(
          requestFrame({ payloadProtocol: P, requestId: 1n, payload: text(request) }),
        ),
      }),
    }),
  );
}

/** The acceptor on a seqpacket pair; every message the broker end receives, with its acks. */
function channel(options: { offerTimeoutMs?: number } = {}) {
  const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
  const acceptor = new HandoffAcceptor(daemonEnd, {
    server: daemon,
    serviceName: 'demo',
    ...options,
  });
  const rejected: string[] = [];
  acceptor.on('rejected', (r: { reason: string }) => rejected.push(r.reason));
  acceptor.on('error', () => {});
  const messages: HandoffAck[][] = [];
  const decoder = new FrameDecoder();
  brokerEnd.on('message', ({ data }: { data: Buffer }) =>
    messages.push(decoder.push(data).map((f) => HandoffAck.decode(f.payload))),
  );
  cleanup.push(() => {
    acceptor.close();
    brokerEnd.close();
  });
  return { brokerEnd, messages, rejected };
}

describe('HandoffAcceptor per-offer costs', () => {
  it('acks the offers of one read in a single message; every client is served', async () => {
    const before = openFds();
    const { brokerEnd, messages } = channel();
    const clients = [await client(), await client(), await client()];
    // Three fd messages (token + offer each) in the socket before the daemon reads.
    clients.forEach(({ brokerSide }, i) => {
      const token = randomBytes(16);
      brokerEnd.write(Buffer.concat([token, offerFrame(token, BigInt(i + 1), `req ${i}`)]), [
        fdOf(brokerSide),
      ]);
    });
    for (const { brokerSide } of clients) brokerSide.destroy();
    await expect.poll(() => messages.flat().length).toBe(3);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.map((a) => [a.correlationId, a.accepted])).toEqual([
      [1n, true],
      [2n, true],
      [3n, true],
    ]);
    for (const [i, { heard }] of clients.entries()) {
      await expect.poll(() => heard.length).toBe(1);
      expect(str(heard[0]!.payload)).toBe(`req ${i}`);
    }
    for (const c of cleanup.splice(0)) c();
    await expect.poll(openFds).toBe(before);
  });

  it('arms no timer for an fd whose offer is in its own message, and one when the offer comes later', async () => {
    const { brokerEnd, messages, rejected } = channel({ offerTimeoutMs: 4321 });
    const holds = vi.spyOn(globalThis, 'setTimeout');
    const armed = () => holds.mock.calls.filter(([, ms]) => ms === 4321).length;
    const first = await client();
    const token = randomBytes(16);
    brokerEnd.write(Buffer.concat([token, offerFrame(token, 7n, 'together')]), [
      fdOf(first.brokerSide),
    ]);
    first.brokerSide.destroy();
    await expect.poll(() => messages.flat().length).toBe(1);
    expect(armed()).toBe(0);
    await expect.poll(() => first.heard.length).toBe(1);
    expect(str(first.heard[0]!.payload)).toBe('together');

    // The token alone with the fd, the offer in a later message: the fd waits under a timer.
    const second = await client();
    const late = randomBytes(16);
    brokerEnd.write(late, [fdOf(second.brokerSide)]);
    second.brokerSide.destroy();
    await expect.poll(armed).toBe(1);
    brokerEnd.write(offerFrame(late, 8n, 'later'));
    await expect.poll(() => messages.flat().length).toBe(2);
    expect(messages.flat().map((a) => [a.correlationId, a.accepted])).toEqual([
      [7n, true],
      [8n, true],
    ]);
    await expect.poll(() => second.heard.length).toBe(1);
    expect(str(second.heard[0]!.payload)).toBe('later');
    expect(rejected).toEqual([]);
  });
});
