// The broker's end of a backend's persistent control connection (DESIGN
// §2.5, "we go further"): the daemon registers its endpoint once, then the
// broker pipelines handoff offers on it — token+fd in one sendmsg, then the
// framed HandoffOffer — and matches the acks by correlation id. No dial per
// handoff, no sleep-polling: everything is driven by socket events. The
// bytes of an offer are wire.ts's, reading an ack is ack.ts's.
import { EventEmitter } from 'node:events';
import { closeFd, type FdSocket, peerCredentials } from '@handoff/fdpass';
import {
  CHANNEL_CAP_CLIENT_PRELUDE,
  CHANNEL_CAP_OFFER_WITH_FD,
  ChannelRegistration,
  type Endpoint,
  type Frame,
  FrameDecoder,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
} from '@handoff/protocol';
import { type OfferOutcome, readAck } from './ack.js';
import { type Offer, offerFrame } from './wire.js';

interface PendingOffer {
  resolve: (outcome: OfferOutcome) => void;
  timer: NodeJS.Timeout;
}

/**
 * Events: 'registered' (Endpoint), 'close'. A channel that breaks the
 * protocol is closed, and every offer in flight on it fails at once.
 */
export class BackendChannel extends EventEmitter {
  readonly peer: { pid: number; uid: number; gid: number };
  private readonly socket: FdSocket;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
  private readonly pending = new Map<bigint, PendingOffer>();
  private endpointValue: ChannelRegistration | null = null;
  private closedValue = false;

  /**
   * `registration`: for a channel that registered with another broker
   * process and was handed to this one in an upgrade (src/upgrade/): it
   * will not register again.
   */
  constructor(socket: FdSocket, registration?: ChannelRegistration) {
    super();
    this.socket = socket;
    this.peer = peerCredentials(socket);
    if (registration !== undefined) this.endpointValue = registration;
    socket.on('message', ({ data, fds }: { data: Buffer; fds: number[] }) => {
      if (fds.length > 0) {
        // A daemon has no business sending us fds: drop them and the channel.
        for (const fd of fds) closeQuietly(fd);
        this.close('daemon sent file descriptors on the control channel');
        return;
      }
      this.onBytes(data);
    });
    socket.on('error', () => this.close('control channel error'));
    socket.on('close', () => this.close('control channel closed'));
  }

  get endpoint(): Endpoint | null {
    return this.endpointValue;
  }

  /** The backend writes an offer's client prelude (it registered CHANNEL_CAP_CLIENT_PRELUDE). */
  get writesPrelude(): boolean {
    return this.can(CHANNEL_CAP_CLIENT_PRELUDE);
  }

  private can(capability: bigint): boolean {
    return (
      this.endpointValue !== null && (this.endpointValue.channelCapabilities & capability) !== 0n
    );
  }

  get closed(): boolean {
    return this.closedValue;
  }

  /** The registration the backend sent (null until it did). */
  get registration(): ChannelRegistration | null {
    return this.endpointValue;
  }

  /** The socket's fd, to hand the channel to another broker process (it stays ours). */
  get fd(): number {
    return this.socket.fd;
  }

  /** Stops reading: what the backend sends next waits in the socket for whoever reads it. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Hands `clientFd` to the backend. The fd is duplicated into the backend
   * by the kernel; the caller keeps (and later closes) its own copy.
   * Resolves with the backend's verdict, or a refusal at the deadline.
   */
  offer(clientFd: number, offer: Offer, deadlineMs: number): Promise<OfferOutcome> {
    if (this.closedValue)
      return Promise.resolve({
        accepted: false,
        reason: 'control channel closed',
        fate: 'not-sent',
      });
    return new Promise<OfferOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(offer.correlationId);
        resolve({ accepted: false, reason: `no ack within ${deadlineMs} ms`, fate: 'unknown' });
      }, deadlineMs);
      this.pending.set(offer.correlationId, { resolve, timer });
      try {
        const frame = offerFrame(offer);
        if (this.can(CHANNEL_CAP_OFFER_WITH_FD)) {
          // Token and offer in the fd's own message: one sendmsg, one wake-up.
          this.socket.write(Buffer.concat([offer.token, frame]), [clientFd]);
        } else {
          this.socket.write(offer.token, [clientFd]);
          this.socket.write(frame);
        }
      } catch (error) {
        // write() throws only for a message the kernel refused outright (or a
        // closed socket): the fd did not go out.
        this.settle(offer.correlationId, {
          accepted: false,
          reason: `send failed: ${(error as Error).message}`,
          fate: 'not-sent',
        });
      }
    });
  }

  close(reason = 'closed'): void {
    if (this.closedValue) return;
    this.closedValue = true;
    for (const id of [...this.pending.keys()])
      this.settle(id, { accepted: false, reason, fate: 'unknown' });
    this.socket.close();
    this.emit('close', reason);
  }

  private settle(id: bigint, outcome: OfferOutcome): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    entry.resolve(outcome);
  }

  private onBytes(bytes: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(bytes);
    } catch {
      this.close('bad frame on the control channel');
      return;
    }
    for (const frame of frames) {
      if (this.closedValue) return;
      this.onFrame(frame);
    }
    // The decoder returns the good frames before bad bytes and keeps the
    // error: a channel whose stream is broken must close now, not when the
    // next message happens to arrive.
    if (this.decoder.error) this.close('bad frame on the control channel');
  }

  private onFrame(frame: Frame): void {
    if (frame.payloadProtocol !== HANDOFF_PAYLOAD_PROTOCOL) {
      this.close(`unexpected payload protocol ${frame.payloadProtocol} on the control channel`);
      return;
    }
    try {
      if (frame.kind === FrameKind.EVENT && this.endpointValue === null) {
        this.endpointValue = ChannelRegistration.decode(frame.payload);
        this.emit('registered', this.endpointValue);
        return;
      }
      if (frame.kind === FrameKind.RESPONSE) {
        const { correlationId, outcome } = readAck(frame.payload);
        this.settle(correlationId, outcome);
        return;
      }
    } catch {
      this.close('undecodable control frame');
      return;
    }
    this.close(`unexpected frame kind ${frame.kind} on the control channel`);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // Not ours to worry about any more.
  }
}
