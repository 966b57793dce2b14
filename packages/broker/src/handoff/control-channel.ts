// The broker's end of a backend's persistent control connection (DESIGN
// §2.5, "we go further"): the daemon registers its endpoint once, then the
// broker pipelines handoff offers on it — token+fd in one sendmsg, then the
// framed HandoffOffer — and matches the acks by correlation id. No dial per
// handoff, no sleep-polling: everything is driven by socket events. The
// bytes of an offer are wire.ts's, reading an ack is ack.ts's.
import { EventEmitter } from 'node:events';
import { type FdSocket, peerCredentials } from '@handoff/fdpass';
import {
  CHANNEL_CAP_CLIENT_PRELUDE,
  CHANNEL_CAP_FD_STORE,
  CHANNEL_CAP_OFFER_WITH_FD,
  ChannelRegistration,
  type Endpoint,
  type Frame,
  FrameDecoder,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  tryDecodeFramed,
} from '@handoff/protocol';
import { closeQuietly } from '../close-quietly.js';
import {
  type FdStoreEntry,
  FdStoreError,
  fdStoreMessages,
  MAX_FD_STORE_MESSAGE_BYTES,
  readDeposit,
} from '../fd-store-wire.js';
import { type OfferOutcome, readAck } from './ack.js';
import { type Offer, offerFrame } from './wire.js';

/**
 * How long a closed fd-store channel still reads deposits (see close()):
 * a stopping daemon's last one comes within its stop grace.
 */
const FD_STORE_LINGER_MS = 5000;

interface PendingOffer {
  resolve: (outcome: OfferOutcome) => void;
  /** performance.now() past which the offer is given up. */
  deadline: number;
  deadlineMs: number;
}

/**
 * Events: 'registered' (Endpoint), 'close', and for a backend that
 * registered CHANNEL_CAP_FD_STORE: 'deposit' (FdStoreEntry[], fds: the
 * listener owns them) and 'deposit-refused' (FdStoreError: the fds were
 * closed, the channel stays). A channel that breaks the protocol is closed,
 * and every offer in flight on it fails at once.
 */
export class BackendChannel extends EventEmitter {
  readonly peer: { pid: number; uid: number; gid: number };
  private readonly socket: FdSocket;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
  private readonly pending = new Map<bigint, PendingOffer>();
  /**
   * One timer for the offers in flight, due at or before the earliest
   * deadline (not a timer per offer: an ack settles its offer with a map
   * delete). Left armed when the last ack comes; it then finds nothing due.
   */
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineTimerAt = Number.POSITIVE_INFINITY;
  private endpointValue: ChannelRegistration | null = null;
  private closedValue = false;
  private pausedValue = false;

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
      if (this.closedValue) {
        // Lingering for a last deposit (see close()): nothing else counts now.
        if (fds.length > 0) this.onFdMessage(data, fds);
        return;
      }
      if (fds.length > 0) {
        this.onFdMessage(data, fds);
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
    this.pausedValue = true;
    this.socket.pause();
  }

  resume(): void {
    this.pausedValue = false;
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
      const deadline = performance.now() + deadlineMs;
      this.pending.set(offer.correlationId, { resolve, deadline, deadlineMs });
      this.armDeadline(deadline);
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

  /**
   * Gives stored fds back to the backend (it registered CHANNEL_CAP_FD_STORE):
   * FdStoreEntries EVENT frames, each in one message with its fds. The
   * kernel duplicates the fds; the caller closes its copies. False when
   * nothing could be sent (closed, no fd store, or the kernel refused).
   */
  deliver(entries: readonly FdStoreEntry[], fds: readonly number[]): boolean {
    if (this.closedValue || !this.can(CHANNEL_CAP_FD_STORE) || entries.length !== fds.length)
      return false;
    try {
      for (const message of fdStoreMessages(entries.map((e, i) => ({ ...e, fd: fds[i]! }))))
        this.socket.write(message.data, message.fds);
      return true;
    } catch {
      return false;
    }
  }

  close(reason = 'closed'): void {
    if (this.closedValue) return;
    this.closedValue = true;
    for (const id of [...this.pending.keys()])
      this.settle(id, { accepted: false, reason, fate: 'unknown' });
    this.disarmDeadline();
    const keeping = this.can(CHANNEL_CAP_FD_STORE) && this.listenerCount('deposit') > 0;
    if (keeping && !this.pausedValue && !this.socket.closed) this.linger();
    else this.socket.close();
    this.emit('close', reason);
  }

  /**
   * A backend with the fd store deposits as it stops, and the broker may
   * drop its channel first (its process exit was seen before the deposit
   * was read, or the channel was closed just before the daemon was told to
   * stop): so a closed channel still reads deposits until the daemon hangs
   * up, for at most FD_STORE_LINGER_MS, without keeping the broker alive
   * (when someone listens for deposits). A paused channel (being handed to another broker) is closed at once.
   */
  private linger(): void {
    const socket = this.socket;
    socket.unref();
    const timer = setTimeout(() => socket.close(), FD_STORE_LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  private settle(id: bigint, outcome: OfferOutcome): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    // The deadline timer stays armed: the next offer usually finds it due
    // earlier than its own deadline and costs no timer at all.
    this.pending.delete(id);
    entry.resolve(outcome);
  }

  /** Makes sure the deadline timer fires by `at`. */
  private armDeadline(at: number): void {
    if (this.deadlineTimer !== null && this.deadlineTimerAt <= at) return;
    this.disarmDeadline();
    this.deadlineTimerAt = at;
    this.deadlineTimer = setTimeout(
      () => {
        this.deadlineTimer = null;
        this.deadlineTimerAt = Number.POSITIVE_INFINITY;
        this.expireOffers();
      },
      Math.max(1, Math.ceil(at - performance.now())),
    );
  }

  private disarmDeadline(): void {
    if (this.deadlineTimer === null) return;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    this.deadlineTimerAt = Number.POSITIVE_INFINITY;
  }

  /** Gives up the offers past their deadline, and re-arms for the next one. */
  private expireOffers(): void {
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [id, entry] of this.pending) {
      if (entry.deadline <= now) {
        this.settle(id, {
          accepted: false,
          reason: `no ack within ${entry.deadlineMs} ms`,
          fate: 'unknown',
        });
      } else if (entry.deadline < next) next = entry.deadline;
    }
    if (next !== Number.POSITIVE_INFINITY) this.armDeadline(next);
  }

  /**
   * Fds come only with a deposit: one whole FdStoreEntries EVENT frame in
   * the fds' own message, from a backend that registered the fd store.
   * Anything else drops the fds and the channel.
   */
  private onFdMessage(data: Uint8Array, fds: number[]): void {
    let frame: Frame | null = null;
    if (this.can(CHANNEL_CAP_FD_STORE) && this.decoder.bufferedBytes === 0) {
      try {
        const decoded = tryDecodeFramed(data, { maxFrameBytes: MAX_FD_STORE_MESSAGE_BYTES });
        if (decoded && decoded.consumed === data.length) frame = decoded.frame;
      } catch {
        frame = null;
      }
    }
    if (
      frame === null ||
      frame.kind !== FrameKind.EVENT ||
      frame.payloadProtocol !== HANDOFF_PAYLOAD_PROTOCOL
    ) {
      closeQuietly(fds);
      this.emit(
        'deposit-refused',
        new FdStoreError(
          'FDS_WITHOUT_DEPOSIT',
          'file descriptors on a message that is not an fd store deposit',
        ),
      );
      this.close('daemon sent file descriptors on the control channel');
      return;
    }
    this.onDeposit(frame.payload, fds);
  }

  private onDeposit(payload: Uint8Array, fds: number[]): void {
    let entries: FdStoreEntry[];
    try {
      entries = readDeposit(payload, fds.length);
      if (this.listenerCount('deposit') === 0)
        throw new FdStoreError('FD_STORE_DISABLED', 'this broker keeps no fds for this channel');
    } catch (error) {
      closeQuietly(fds);
      this.emit('deposit-refused', error);
      return;
    }
    this.emit('deposit', entries, fds);
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
      if (frame.kind === FrameKind.EVENT && this.can(CHANNEL_CAP_FD_STORE)) {
        // A deposit without fds: valid only when it names none.
        this.onDeposit(frame.payload, []);
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
