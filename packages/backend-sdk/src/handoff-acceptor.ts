// The backend side of a connection handoff (DESIGN §2.5). A broker sends,
// on a control channel: the 16-byte token with the client's fd in one
// sendmsg, then a framed HandoffOffer carrying the same token. The acceptor
// pairs the two (same token, single use, within a TTL), adopts the fd as a
// served connection — feeding it first the bytes the broker had already
// read — and answers a HandoffAck. An fd that arrives without a valid offer
// is closed; nothing is ever adopted on a mismatched or expired token.
import { EventEmitter } from 'node:events';
import {
  closeFd,
  type FdServer,
  FdServer as FdServerClass,
  type FdSocket,
  socketFromFd,
} from '@handoff/fdpass';
import {
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  HANDOFF_TOKEN_BYTES,
  HandoffAck,
  HandoffOffer,
  responseFrame,
} from '@handoff/protocol';
import { BackendSdkError } from './errors.js';
import { isDeliveryMessage, readDelivery, type StoredFdEntry } from './fd-store-client.js';
import { PeerPolicy } from './peer-policy.js';
import type { DaemonServer } from './server/daemon-server.js';

export interface HandoffAcceptorOptions {
  /** Where adopted connections are served. */
  server: Pick<DaemonServer, 'adopt'>;
  /** Offers for another service are refused; unset accepts any. */
  serviceName?: string;
  /** How long an fd may wait for its offer (default 5000 ms, the reference's ack deadline). */
  offerTimeoutMs?: number;
  /** Bytes of client data an offer may carry (default 64 KiB, the Hello cap). */
  maxBufferedBytes?: number;
  /** Uids allowed at the other end of the channel (SO_PEERCRED); defaults to our own. */
  allowedUids?: readonly number[];
  /**
   * Takes fds the broker's fd store gives back (a seqpacket channel that
   * registered CHANNEL_CAP_FD_STORE): the callee owns them. Unset, such a
   * message is an UNEXPECTED_FD like any other.
   */
  onStoredFds?: (entries: StoredFdEntry[]) => void;
}

export type HandoffAcceptorErrorCode =
  /** The control channel's peer runs as a uid not in `allowedUids`. */
  | 'PEER_REJECTED'
  /** The control channel itself failed (a socket error). */
  | 'CHANNEL_ERROR'
  /** A message carried fds where none fit (several, too few bytes, or one already waiting). */
  | 'UNEXPECTED_FD'
  /** Bytes on the channel that do not cut into frames. */
  | 'BAD_FRAME'
  /** A frame that is not a handoff REQUEST. */
  | 'UNEXPECTED_FRAME'
  /** A handoff REQUEST whose HandoffOffer does not decode. */
  | 'BAD_OFFER'
  /** An fd store delivery whose entries do not match its fds (they were closed). */
  | 'BAD_FD_DELIVERY';

/** A fault on a control channel, emitted as 'error'; the channel is closed. */
export class HandoffAcceptorError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:HandoffAcceptorError';
  override readonly name = 'HandoffAcceptorError';
  declare readonly code: HandoffAcceptorErrorCode;
  constructor(code: HandoffAcceptorErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

export interface HandoffEvent {
  correlationId: bigint;
  serviceName: string;
  /** Client bytes that came with the offer and were fed to the connection first. */
  bufferedBytes: number;
}

export interface HandoffRejection {
  correlationId: bigint;
  reason: string;
}

/** A Negotiated reply and a relay take a few hundred bytes; anything far larger is not a prelude. */
const MAX_CLIENT_PRELUDE_BYTES = 4096;

/** Remembered tokens: enough to refuse any replay within a day of offers. */
const USED_TOKEN_MEMORY = 65_536;

interface PendingFd {
  token: Buffer;
  /** The token in hex: its key in the used-token memory. */
  key: string;
  fd: number;
  /** Armed only when the offer did not come in the fd's own message. */
  timer: NodeJS.Timeout | null;
}

/**
 * Serves offers arriving on one control channel (an FdSocket, stream or
 * seqpacket). Events: 'handoff' (HandoffEvent), 'rejected' (HandoffRejection),
 * 'error' (HandoffAcceptorError: a channel-level fault; the channel is
 * closed), 'close'.
 */
export class HandoffAcceptor extends EventEmitter {
  readonly #channel: FdSocket;
  readonly #options: HandoffAcceptorOptions;
  readonly #decoder: FrameDecoder;
  #pending: PendingFd | null = null;
  readonly #used = new Set<string>();
  #closed = false;
  /**
   * Acks of adopted connections waiting for their tick, sent together in one
   * write (one sendmsg for every offer of a batch): the channel stays open for them.
   */
  #acksDue: Uint8Array[] = [];

  constructor(channel: FdSocket, options: HandoffAcceptorOptions) {
    super();
    this.#channel = channel;
    this.#options = options;
    this.#decoder = new FrameDecoder({
      maxFrameBytes: (options.maxBufferedBytes ?? 64 * 1024) + MAX_CLIENT_PRELUDE_BYTES + 4096,
    });
    // Only a broker of an allowed uid may hand us connections.
    const verdict = new PeerPolicy(options.allowedUids).check(channel);
    if (!verdict.allowed) {
      channel.close();
      this.#closed = true;
      const peerUid = verdict.peer?.uid;
      queueMicrotask(() =>
        this.emit(
          'error',
          new HandoffAcceptorError(
            'PEER_REJECTED',
            `control channel peer uid ${peerUid} is not allowed to hand off connections`,
            verdict.cause,
          ),
        ),
      );
      return;
    }
    channel.on('message', ({ data, fds }: { data: Buffer; fds: number[] }) =>
      this.#onMessage(data, fds),
    );
    channel.on('error', (error: Error) =>
      this.#fault('CHANNEL_ERROR', `control channel error: ${error.message}`, error),
    );
    channel.on('close', () => this.close());
  }

  /** Stops accepting; closes the channel and any fd still waiting for its offer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropPending();
    // A fault later in the message that adopted a connection must not
    // swallow its ack: the broker learns of the adoption only from it.
    if (this.#acksDue.length === 0) this.#channel.close();
    this.emit('close');
  }

  #onMessage(data: Buffer, fds: number[]): void {
    if (this.#closed) {
      if (fds.length) closeFdsQuietly(fds);
      return;
    }
    if (fds.length > 0) {
      const takeStored = this.#options.onStoredFds;
      if (takeStored && this.#channel.kind === 'seqpacket' && isDeliveryMessage(data)) {
        let entries: StoredFdEntry[];
        try {
          entries = readDelivery(data, fds);
        } catch (error) {
          closeFdsQuietly(fds);
          this.#fault('BAD_FD_DELIVERY', (error as Error).message, error);
          return;
        }
        takeStored(entries);
        return;
      }
      if (fds.length !== 1 || data.length < HANDOFF_TOKEN_BYTES || this.#pending) {
        closeFdsQuietly(fds);
        this.#fault(
          'UNEXPECTED_FD',
          `unexpected fd message (${fds.length} fds with ${data.length} bytes)`,
        );
        return;
      }
      if (this.#channel.kind === 'seqpacket') {
        // One message is one sendmsg: the token first, then (from a broker
        // that knows CHANNEL_CAP_OFFER_WITH_FD) the framed offer itself. The
        // fd waits under a timer only if its offer was not in that message.
        const held = this.#hold(Buffer.from(data.subarray(0, HANDOFF_TOKEN_BYTES)), fds[0]!, false);
        if (data.length > HANDOFF_TOKEN_BYTES) this.#feedFrames(data.subarray(HANDOFF_TOKEN_BYTES));
        if (this.#isHeld(held)) this.#armHold(held);
        return;
      }
      // On a stream the fds rode the token write: the last 16 bytes of this
      // data (DESIGN §2.5, and fdpass's stream rule: nothing written later
      // is in `data`); earlier bytes are frames that preceded it.
      const before = data.subarray(0, data.length - HANDOFF_TOKEN_BYTES);
      if (before.length > 0) this.#feedFrames(before);
      if (this.#closed) {
        closeFdsQuietly(fds);
        return;
      }
      this.#hold(Buffer.from(data.subarray(data.length - HANDOFF_TOKEN_BYTES)), fds[0]!);
      return;
    }
    this.#feedFrames(data);
  }

  #hold(token: Buffer, fd: number, armed = true): PendingFd {
    const pending: PendingFd = { token, key: token.toString('hex'), fd, timer: null };
    this.#pending = pending;
    if (armed) this.#armHold(pending);
    return pending;
  }

  /** `pending` still waits for its offer, and no timer watches it yet. */
  #isHeld(pending: PendingFd): boolean {
    return this.#pending === pending && pending.timer === null;
  }

  /** Closes the held fd if its offer does not come within offerTimeoutMs. */
  #armHold(pending: PendingFd): void {
    const timeoutMs = this.#options.offerTimeoutMs ?? 5000;
    pending.timer = setTimeout(() => {
      if (this.#pending !== pending) return;
      this.#pending = null;
      closeFdsQuietly([pending.fd]);
      this.emit('rejected', {
        correlationId: 0n,
        reason: `no offer within ${timeoutMs} ms for a received fd`,
      });
    }, timeoutMs);
    pending.timer.unref();
  }

  #feedFrames(bytes: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(bytes);
    } catch (error) {
      this.#fault(
        'BAD_FRAME',
        `bad frame on the control channel: ${(error as Error).message}`,
        error,
      );
      return;
    }
    for (const frame of frames) {
      if (this.#closed) return;
      this.#onFrame(frame);
    }
    if (this.#decoder.error) {
      this.#fault(
        'BAD_FRAME',
        `bad frame on the control channel: ${this.#decoder.error.message}`,
        this.#decoder.error,
      );
    }
  }

  #onFrame(frame: Frame): void {
    if (frame.payloadProtocol !== HANDOFF_PAYLOAD_PROTOCOL || frame.kind !== FrameKind.REQUEST) {
      this.#fault(
        'UNEXPECTED_FRAME',
        `unexpected frame on the control channel (protocol ${frame.payloadProtocol}, kind ${frame.kind})`,
      );
      return;
    }
    let offer: HandoffOffer;
    try {
      offer = HandoffOffer.decode(frame.payload);
    } catch (error) {
      this.#fault('BAD_OFFER', `undecodable HandoffOffer: ${(error as Error).message}`, error);
      return;
    }
    const pending = this.#pending;
    this.#pending = null;
    if (pending?.timer) clearTimeout(pending.timer);
    const problem = pending ? this.#checkOffer(pending, offer) : 'offer without a client fd';
    let socket: ReturnType<typeof socketFromFd> | undefined;
    let reason = problem;
    if (!reason && pending) {
      this.#remember(pending.key);
      try {
        // A Unix stream socket: the broker accepted it on its AF_UNIX
        // listener (DESIGN §2.5), and it reached us on a channel whose peer
        // passed the uid check. So its family and type are not asked of the
        // kernel again (two getsockopt, ~3 µs of each handoff).
        socket = socketFromFd(pending.fd, { transport: 'unix' });
      } catch (error) {
        reason = `cannot adopt the client fd: ${(error as Error).message}`;
      }
    }
    if (!socket) {
      if (pending) closeFdsQuietly([pending.fd]);
      this.#ack(frame, offer, false, reason ?? 'refused');
      this.emit('rejected', { correlationId: offer.correlationId, reason });
      return;
    }
    // The broker's replies to the client (Negotiated, accepted relay) come
    // from us, batched with our answers to the buffered bytes: the client
    // hears it all in one write, a hop sooner than through the broker.
    const prelude = offer.clientPrelude;
    if (!this.#options.server.adopt(socket, offer.bufferedClientBytes, prelude)) {
      // Closing, or at its connection limit: the client must hear it from
      // the broker, which falls back to reconnect.
      const why = 'the daemon refused the connection (closing or at its limit)';
      this.#ack(frame, offer, false, why);
      this.emit('rejected', { correlationId: offer.correlationId, reason: why });
      return;
    }
    // The client's bytes go out first (the connection flushes on the next
    // tick, queued before this): the ack only lets the broker close its copy.
    // Acks due in the same tick leave together, in one write.
    if (this.#acksDue.length === 0) process.nextTick(this.#sendAcksDue);
    this.#acksDue.push(this.#ackFrame(frame, offer, true, '', prelude.length > 0));
    this.emit('handoff', {
      correlationId: offer.correlationId,
      serviceName: offer.serviceName,
      bufferedBytes: offer.bufferedClientBytes.length,
    });
  }

  /** Why this offer may not adopt the pending fd, or null when it may. */
  #checkOffer(pending: PendingFd, offer: HandoffOffer): string | null {
    if (offer.token.length !== HANDOFF_TOKEN_BYTES)
      return `token must be ${HANDOFF_TOKEN_BYTES} bytes`;
    if (!pending.token.equals(offer.token)) return 'token does not match the one sent with the fd';
    if (this.#used.has(pending.key)) return 'token already used';
    const service = this.#options.serviceName;
    if (service !== undefined && offer.serviceName !== service) {
      return `offer for service ${JSON.stringify(offer.serviceName)}, this daemon serves ${JSON.stringify(service)}`;
    }
    const maxBuffered = this.#options.maxBufferedBytes ?? 64 * 1024;
    if (offer.bufferedClientBytes.length > maxBuffered) {
      return `offer carries ${offer.bufferedClientBytes.length} buffered bytes, over ${maxBuffered}`;
    }
    if (offer.clientPrelude.length > MAX_CLIENT_PRELUDE_BYTES) {
      return `offer carries a ${offer.clientPrelude.length}-byte client prelude, over ${MAX_CLIENT_PRELUDE_BYTES}`;
    }
    return null;
  }

  #remember(key: string): void {
    this.#used.add(key);
    if (this.#used.size > USED_TOKEN_MEMORY) {
      const oldest = this.#used.values().next().value;
      if (oldest !== undefined) this.#used.delete(oldest);
    }
  }

  #ack(frame: Frame, offer: HandoffOffer, accepted: boolean, errorDetail: string): void {
    const reply = this.#ackFrame(frame, offer, accepted, errorDetail);
    if (!this.#channel.closed) this.#channel.write(reply);
  }

  readonly #sendAcksDue = (): void => {
    const acks = this.#acksDue;
    this.#acksDue = [];
    if (!this.#channel.closed) {
      this.#channel.write(acks.length === 1 ? acks[0]! : Buffer.concat(acks));
    }
    if (this.#closed) this.#channel.close();
  };

  /** The framed HandoffAck answering `offer`. */
  #ackFrame(
    frame: Frame,
    offer: HandoffOffer,
    accepted: boolean,
    errorDetail: string,
    preludeWritten = false,
  ): Uint8Array {
    const ack = HandoffAck.encode({
      token: offer.token,
      accepted,
      errorDetail,
      correlationId: offer.correlationId,
      preludeWritten,
    });
    return encodeFramed(
      responseFrame({ ...frame, requestId: offer.correlationId }, { payload: ack }),
    );
  }

  #dropPending(): void {
    if (!this.#pending) return;
    if (this.#pending.timer) clearTimeout(this.#pending.timer);
    closeFdsQuietly([this.#pending.fd]);
    this.#pending = null;
  }

  #fault(code: HandoffAcceptorErrorCode, message: string, cause?: unknown): void {
    if (this.#closed) return;
    this.emit('error', new HandoffAcceptorError(code, message, cause));
    this.close();
  }
}

function closeFdsQuietly(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeFd(fd);
    } catch {
      // Already closed: nothing else owned it.
    }
  }
}

export type HandoffEndpointOptions = HandoffAcceptorOptions;

/**
 * The reference's variant: a handoff endpoint the broker dials per handoff.
 * Each accepted connection (stream) is served by its own HandoffAcceptor;
 * peers of another uid are dropped. Close the returned FdServer to stop.
 */
export async function listenForHandoffs(
  path: string,
  options: HandoffEndpointOptions,
): Promise<FdServer> {
  const server = await FdServerClass.listen(path, { kind: 'stream', mode: 0o600 });
  server.on('connection', (channel: FdSocket) => {
    // The acceptor checks the peer's uid and closes foreign channels.
    const acceptor = new HandoffAcceptor(channel, options);
    acceptor.on('error', () => {});
    acceptor.on('handoff', (event: HandoffEvent) => server.emit('handoff', event));
    acceptor.on('rejected', (event: HandoffRejection) => server.emit('rejected', event));
  });
  return server;
}
