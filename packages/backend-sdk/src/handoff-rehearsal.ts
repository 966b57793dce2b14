// One rehearsal of the handoff path, before a daemon first attaches to its
// broker. In a fresh process every function a handoff runs — the
// acceptor's message handling, the offer's decoding, adopting the fd, the
// mux, writing the prelude and the answer, the ack — runs for the first
// time on the first clients the broker hands over, and V8 compiles each one
// then. In a rolling restart those are exactly the clients the replacement
// takes over from its predecessor, on a machine busy with the switch:
// measured 18–25 ms across a replacement's first handoffs on 2 cores
// (lifecycle.daemon_restart in tools/bench). Rehearsed here on socketpairs,
// with an identity probe as the client's bytes, it costs the boot a few ms
// instead. None of the daemon's own code runs but its legacy detector, as
// for any probe: the mux answers the probe (a daemon whose detector would
// claim it is not rehearsed), and the connection is adopted without the
// server's events.
import { randomBytes } from 'node:crypto';
import { FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import {
  encodeFramed,
  FrameDecoder,
  HANDOFF_PAYLOAD_PROTOCOL,
  HANDOFF_TOKEN_BYTES,
  HandoffOffer,
  PROBE_NONCE_BYTES,
  requestFrame,
} from '@handoff/protocol';
import { HandoffAcceptor } from './handoff-acceptor.js';
import { encodeProbeChallenge } from './prober.js';
import type { DaemonServer } from './server/daemon-server.js';

/** Stands in for the Negotiated reply a broker's offer carries: any bytes do. */
const PRELUDE = Buffer.from('rehearsal\n');

const REQUEST_ID = 1n;

/** The rehearsal's client bytes: an identity probe, which the mux answers itself. */
export function rehearsalProbe(): Uint8Array {
  return encodeProbeChallenge(new Uint8Array(randomBytes(PROBE_NONCE_BYTES)), REQUEST_ID);
}

/**
 * Hands one connection to `adopt` through a HandoffAcceptor, exactly as a
 * broker would (token, offer and fd in one seqpacket message), with
 * `probe` (rehearsalProbe()) as its buffered bytes; resolves true once the
 * ack and the probe's answer are back, false if that took over `timeoutMs`
 * or anything failed. Never throws, and leaves no fd behind.
 */
export async function rehearseHandoff(
  adopt: DaemonServer['adopt'],
  serviceName: string,
  probe: Uint8Array,
  timeoutMs = 1000,
): Promise<boolean> {
  /** Every socket made here: closed at the end, whatever happened. */
  const owned: FdSocket[] = [];
  let acceptor: HandoffAcceptor | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    const [broker, daemon] = FdSocket.pair('seqpacket');
    owned.push(broker, daemon);
    const [client, served] = FdSocket.pair('stream');
    owned.push(client, served);
    acceptor = new HandoffAcceptor(daemon, { server: { adopt }, serviceName });
    acceptor.on('error', () => {});
    const acked = new Promise<void>((resolve) => broker.once('message', () => resolve()));
    const answered = new Promise<void>((resolve) => {
      const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
      let skip = PRELUDE.length;
      client.on('message', ({ data }: ReceivedMessage) => {
        const rest = data.subarray(Math.min(skip, data.length));
        skip -= data.length - rest.length;
        try {
          if (rest.length > 0 && decoder.push(rest).length > 0) resolve();
        } catch {
          // Not a frame: the deadline ends the rehearsal.
        }
      });
    });
    const token = randomBytes(HANDOFF_TOKEN_BYTES);
    const offer = HandoffOffer.encode({
      handleValue: 0n,
      token,
      serviceName,
      correlationId: REQUEST_ID,
      bufferedClientBytes: probe,
      clientPrelude: PRELUDE,
    });
    const framed = encodeFramed(
      requestFrame({
        payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
        payload: offer,
        requestId: REQUEST_ID,
      }),
    );
    broker.write(Buffer.concat([token, framed]), [served.fd]);
    // The kernel holds its own copy in flight; the acceptor adopts that one.
    served.close();
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    return await Promise.race([Promise.all([acked, answered]).then(() => true), deadline]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    acceptor?.close();
    for (const socket of owned) socket.close();
  }
}
