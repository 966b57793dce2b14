// The daemon's end of the persistent control connection with a broker
// (DESIGN §2.5, "we go further"): one seqpacket FdSocket, opened once, over
// which the daemon registers its endpoint and then receives handoff offers
// for as long as both live. If the broker goes away the daemon keeps
// serving, and reattaches with back-off when a broker is there again.
import { EventEmitter } from 'node:events';
import { FdSocket } from '@handoff/fdpass';
import {
  CHANNEL_CAP_CLIENT_PRELUDE,
  CHANNEL_CAP_OFFER_WITH_FD,
  ChannelRegistration,
  encodeFramed,
  eventFrame,
  HANDOFF_PAYLOAD_PROTOCOL,
} from '@handoff/protocol';
import { HandoffAcceptor } from './handoff-acceptor.js';
import type { DaemonServer } from './server/daemon-server.js';

/** Environment a broker sets for the daemons it spawns. */
export const BROKER_ENV = {
  control: 'HANDOFF_BROKER_CONTROL',
  endpoint: 'HANDOFF_ENDPOINT',
  service: 'HANDOFF_SERVICE_NAME',
  version: 'HANDOFF_SERVICE_VERSION',
} as const;

export interface BrokerAttachmentOptions {
  /** The broker's control socket; defaults to $HANDOFF_BROKER_CONTROL. */
  controlPath?: string;
  /** Where handed-off connections are served. */
  server: Pick<DaemonServer, 'adopt' | 'endpoint'>;
  serviceName: string;
  /** Back-off bounds for reattaching (default 100 ms doubling to 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * Events: 'attached', 'detached', 'handoff' (HandoffEvent), 'rejected'.
 * close() stops reattaching and closes the channel.
 */
export class BrokerAttachment extends EventEmitter {
  readonly #options: BrokerAttachmentOptions;
  readonly #controlPath: string;
  #acceptor: HandoffAcceptor | null = null;
  #timer: NodeJS.Timeout | null = null;
  #delay: number;
  #closed = false;

  constructor(options: BrokerAttachmentOptions) {
    super();
    const controlPath = options.controlPath ?? process.env[BROKER_ENV.control];
    if (!controlPath)
      throw new TypeError(`BrokerAttachment needs controlPath or $${BROKER_ENV.control}`);
    this.#options = options;
    this.#controlPath = controlPath;
    this.#delay = options.retryMinMs ?? 100;
  }

  get attached(): boolean {
    return this.#acceptor !== null;
  }

  /** Connects now; resolves once registered, or rejects with the connect error. */
  async attach(): Promise<void> {
    const channel = await FdSocket.connect(this.#controlPath, { kind: 'seqpacket' });
    if (this.#closed) {
      channel.close();
      return;
    }
    const registration = eventFrame(
      { payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL, requestId: 0n, traceparent: '', tracestate: '' },
      {
        payload: ChannelRegistration.encode({
          namespaceId: this.#options.serviceName,
          path: this.#options.server.endpoint,
          // Our acceptor writes the broker's replies to the client itself and
          // takes an offer in the same message as its fd: a handoff costs
          // one message to us and one write to the client.
          channelCapabilities: CHANNEL_CAP_CLIENT_PRELUDE | CHANNEL_CAP_OFFER_WITH_FD,
        }),
      },
    );
    channel.write(encodeFramed(registration));
    const acceptor = new HandoffAcceptor(channel, {
      server: this.#options.server,
      serviceName: this.#options.serviceName,
    });
    acceptor.on('handoff', (event) => this.emit('handoff', event));
    acceptor.on('rejected', (event) => this.emit('rejected', event));
    acceptor.on('error', () => {});
    acceptor.on('close', () => {
      if (this.#acceptor !== acceptor) return;
      this.#acceptor = null;
      this.emit('detached');
      this.#scheduleRetry();
    });
    this.#acceptor = acceptor;
    this.#delay = this.#options.retryMinMs ?? 100;
    this.emit('attached');
  }

  /** Attaches, retrying with back-off until it works or close() is called. */
  start(): void {
    this.attach().catch(() => this.#scheduleRetry());
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.attach().catch(() => this.#scheduleRetry());
    }, this.#delay);
    this.#timer.unref();
    this.#delay = Math.min(this.#delay * 2, this.#options.retryMaxMs ?? 5000);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const acceptor = this.#acceptor;
    this.#acceptor = null;
    acceptor?.close();
  }
}
