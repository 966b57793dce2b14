// The ack deadline of BackendChannel offers (src/handoff/control-channel.ts):
// one timer for every offer in flight instead of one per offer. Over a real
// seqpacket channel with real fds: each unacknowledged offer still fails at
// its own deadline (a shorter one made later first), an acked one settles at
// once, an offer after the last ack arms no new timer, and close() fails what
// is in flight and leaves no timer behind.
import { closeFds, FdSocket } from '@handoff/fdpass';
import {
  CHANNEL_CAP_CLIENT_PRELUDE,
  CHANNEL_CAP_OFFER_WITH_FD,
  encodeFramed,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  responseFrame,
} from '@handoff/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { OfferOutcome } from '../src/handoff/ack.js';
import { BackendChannel } from '../src/handoff/control-channel.js';
import { registrationMessage } from './channel-registration.js';

const open: FdSocket[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const s of open.splice(0)) s.close();
});

/** A registered prelude channel, the daemon's end (closing every fd it is sent), and a client fd to offer. */
async function setup() {
  const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
  const [client, clientPeer] = FdSocket.pair('stream');
  open.push(daemonEnd, client, clientPeer);
  const channel = new BackendChannel(brokerEnd);
  daemonEnd.on('message', ({ fds }: { fds: number[] }) => {
    if (fds.length > 0) closeFds(fds);
  });
  const registered = new Promise((resolve) => channel.once('registered', resolve));
  daemonEnd.write(
    registrationMessage({
      namespaceId: 'echo',
      path: '/run/echo.sock',
      channelCapabilities: CHANNEL_CAP_CLIENT_PRELUDE | CHANNEL_CAP_OFFER_WITH_FD,
    }),
  );
  await registered;
  const offer = (id: bigint, deadlineMs: number): Promise<OfferOutcome> =>
    channel.offer(
      client.fd,
      {
        token: new Uint8Array(16).fill(Number(id)),
        serviceName: 'echo',
        correlationId: id,
        bufferedClientBytes: new Uint8Array(0),
        clientPrelude: new Uint8Array(0),
        traceparent: '',
        tracestate: '',
      },
      deadlineMs,
    );
  const ack = (id: bigint) =>
    daemonEnd.write(
      encodeFramed(
        responseFrame(
          {
            payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
            requestId: id,
            traceparent: '',
            tracestate: '',
          },
          {
            payload: HandoffAck.encode({
              token: new Uint8Array(16).fill(Number(id)),
              accepted: true,
              correlationId: id,
              preludeWritten: true,
            }),
          },
        ),
      ),
    );
  return { channel, offer, ack };
}

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('BackendChannel offer deadlines', () => {
  it('each unacknowledged offer fails at its own deadline; an acked one settles at once', async () => {
    const { channel, offer, ack } = await setup();
    const t0 = performance.now();
    const settledAt: Record<string, number> = {};
    const track = (name: string, p: Promise<OfferOutcome>) =>
      p.then((outcome) => {
        settledAt[name] = performance.now() - t0;
        return outcome;
      });
    const long = track('long', offer(1n, 400));
    const short = track('short', offer(2n, 100));
    const acked = track('acked', offer(3n, 400));
    ack(3n);
    expect(await acked).toEqual({ accepted: true, preludeWritten: true });
    expect(settledAt.acked).toBeLessThan(100);
    expect(await short).toEqual({
      accepted: false,
      reason: 'no ack within 100 ms',
      fate: 'unknown',
    });
    expect(await long).toEqual({
      accepted: false,
      reason: 'no ack within 400 ms',
      fate: 'unknown',
    });
    expect(settledAt.short).toBeGreaterThanOrEqual(99);
    expect(settledAt.short).toBeLessThan(settledAt.long!);
    expect(settledAt.long).toBeGreaterThanOrEqual(399);
    expect(channel.inFlight).toBe(0);
    channel.close();
  });

  it('an offer made after the last ack arms no new timer', async () => {
    const { channel, offer, ack } = await setup();
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const first = offer(1n, 5000);
    ack(1n);
    expect(await first).toMatchObject({ accepted: true });
    const second = offer(2n, 5000);
    ack(2n);
    expect(await second).toMatchObject({ accepted: true });
    expect(timers.mock.calls.filter(([, ms]) => (ms ?? 0) > 4000)).toHaveLength(1);
    channel.close();
  });

  it('close() fails the offers in flight at once and leaves no timer running', async () => {
    const { channel, offer } = await setup();
    const before = timeouts();
    const pending = offer(9n, 60_000);
    expect(timeouts()).toBe(before + 1);
    channel.close('going away');
    expect(await pending).toEqual({ accepted: false, reason: 'going away', fate: 'unknown' });
    expect(timeouts()).toBe(before);
    // A closed channel makes no offer, and arms nothing.
    expect(await offer(10n, 60_000)).toMatchObject({ accepted: false, fate: 'not-sent' });
    expect(timeouts()).toBe(before);
  });
});
