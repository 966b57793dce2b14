// The daemon's end of the persistent control connection with a broker
// (DESIGN §2.5, "we go further"): one seqpacket FdSocket, opened once, over
// which the daemon registers its endpoint and then receives handoff offers
// for as long as both live. If the broker goes away the daemon keeps
// serving, and reattaches with back-off when a broker is there again.
import { EventEmitter } from 'node:events';
import { closeFd, FdSocket } from '@handoff/fdpass';
import {
  CHANNEL_CAP_CLIENT_PRELUDE,
  CHANNEL_CAP_FD_STORE,
  CHANNEL_CAP_OFFER_WITH_FD,
  ChannelRegistration,
  encodeFramed,
  eventFrame,
  HANDOFF_PAYLOAD_PROTOCOL,
} from '@handoff/protocol';
import { installCrashReports, STATE_DIR_ENV } from './crash-report.js';
import {
  depositMessages,
  FdStoreClientError,
  type FdToStore,
  type StoredFdEntry,
} from './fd-store-client.js';
import { HandoffAcceptor } from './handoff-acceptor.js';
import { rehearsalProbe, rehearseHandoff } from './handoff-rehearsal.js';
import { collectGarbageNow } from './heap-settle.js';
import { type DaemonServer, rehearsalAdopter } from './server/daemon-server.js';

/** Environment a broker sets for the daemons it spawns. */
export const BROKER_ENV = {
  control: 'HANDOFF_BROKER_CONTROL',
  endpoint: 'HANDOFF_ENDPOINT',
  service: 'HANDOFF_SERVICE_NAME',
  version: 'HANDOFF_SERVICE_VERSION',
  listenFd: 'HANDOFF_LISTEN_FD',
  /** The broker's state directory: where the daemon's crash reports go (crash-report.ts). */
  stateDir: STATE_DIR_ENV,
} as const;

export interface BrokerAttachmentOptions {
  /** The broker's control socket; defaults to $HANDOFF_BROKER_CONTROL. */
  controlPath?: string;
  /** Where handed-off connections are served. */
  server: Pick<DaemonServer, 'adopt' | 'endpoint'>;
  serviceName: string;
  /**
   * Use the broker's fd store: storeFds() deposits, 'fds' delivers what an
   * earlier daemon of this service deposited (default false: a daemon that
   * does not listen for 'fds' is not sent any).
   */
  fdStore?: boolean;
  /** Back-off bounds for reattaching (default 100 ms doubling to 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /**
   * Write a crash report (crash-report.ts) if an uncaught exception ends
   * this process: under `$HANDOFF_STATE_DIR/crash` (default true).
   */
  crashReports?: boolean;
  /**
   * Collect the boot's garbage (one full GC, typically 5–15 ms) when start()
   * is called, before the first attach: the first major GC of a fresh process
   * then falls in its boot rather than on the first clients the broker
   * routes to it, a rolling restart's among them (heap-settle.ts). Default true.
   */
  settleHeap?: boolean;
  /**
   * Before the first attach, hand one connection to the server through the
   * whole handoff path on socketpairs, an identity probe as its bytes
   * (handoff-rehearsal.ts): that path is then compiled before the first
   * real client arrives, not on it. Takes a few ms of the boot; the
   * daemon's handlers and its server's events never see it. Only with a
   * server from serveDaemon. Default true.
   */
  rehearse?: boolean;
}

/**
 * Events: 'attached', 'detached', 'handoff' (HandoffEvent), 'rejected', and
 * with `fdStore`: 'fds' (StoredFdEntry[]: the listener owns the fds; with no
 * listener they are closed). close() stops reattaching and closes the channel.
 */
export class BrokerAttachment extends EventEmitter {
  readonly #options: BrokerAttachmentOptions;
  readonly #controlPath: string;
  #acceptor: HandoffAcceptor | null = null;
  #channel: FdSocket | null = null;
  #timer: NodeJS.Timeout | null = null;
  #delay: number;
  #closed = false;
  #prepared = false;

  constructor(options: BrokerAttachmentOptions) {
    super();
    const controlPath = options.controlPath ?? process.env[BROKER_ENV.control];
    if (!controlPath)
      throw new TypeError(`BrokerAttachment needs controlPath or $${BROKER_ENV.control}`);
    this.#options = options;
    this.#controlPath = controlPath;
    this.#delay = options.retryMinMs ?? 100;
    if (options.crashReports !== false) installCrashReports({ program: options.serviceName });
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
          channelCapabilities:
            CHANNEL_CAP_CLIENT_PRELUDE |
            CHANNEL_CAP_OFFER_WITH_FD |
            (this.#options.fdStore === true ? CHANNEL_CAP_FD_STORE : 0n),
        }),
      },
    );
    channel.write(encodeFramed(registration));
    const acceptor = new HandoffAcceptor(channel, {
      server: this.#options.server,
      serviceName: this.#options.serviceName,
      ...(this.#options.fdStore === true
        ? { onStoredFds: (entries: StoredFdEntry[]) => this.#onStoredFds(entries) }
        : {}),
    });
    acceptor.on('handoff', (event) => this.emit('handoff', event));
    acceptor.on('rejected', (event) => this.emit('rejected', event));
    acceptor.on('error', () => {});
    acceptor.on('close', () => {
      if (this.#acceptor !== acceptor) return;
      this.#acceptor = null;
      this.#channel = null;
      this.emit('detached');
      this.#scheduleRetry();
    });
    this.#acceptor = acceptor;
    this.#channel = channel;
    this.#delay = this.#options.retryMinMs ?? 100;
    this.emit('attached');
  }

  /**
   * Deposits fds in the broker's fd store (needs `fdStore` and an attached
   * channel), for the next daemon of this service to get back: a
   * replacement, or a respawn after this one exits. A name already stored
   * is replaced. The kernel copies the fds: the caller keeps (and closes)
   * its own. Resolves once the messages left this process; rejects with
   * FdStoreClientError (NOT_ATTACHED, BAD_FD_NAME, METADATA_TOO_LARGE,
   * SEND_FAILED). The broker may still refuse them (over its fdStoreMax):
   * it closes its copies and logs why.
   */
  async storeFds(entries: readonly FdToStore[]): Promise<void> {
    const channel = this.#channel;
    if (this.#options.fdStore !== true || channel === null || channel.closed)
      throw new FdStoreClientError(
        'NOT_ATTACHED',
        'storeFds needs fdStore: true and an attached broker',
      );
    const messages = depositMessages(entries);
    try {
      for (const m of messages) channel.write(m.data, m.fds);
    } catch (error) {
      throw new FdStoreClientError(
        'SEND_FAILED',
        `fd store deposit failed: ${(error as Error).message}`,
        error,
      );
    }
    // Queued (the broker is slow to read): wait until the kernel has them,
    // so a daemon may exit right after.
    while (channel.writableLength > 0 && !channel.closed)
      await new Promise((resolve) => setTimeout(resolve, 5));
    if (channel.writableLength > 0)
      throw new FdStoreClientError(
        'SEND_FAILED',
        'the broker channel closed before the deposit went out',
      );
  }

  #onStoredFds(entries: StoredFdEntry[]): void {
    if (this.listenerCount('fds') > 0) {
      this.emit('fds', entries);
      return;
    }
    for (const { fd } of entries) {
      try {
        closeFd(fd);
      } catch {
        // Already closed.
      }
    }
  }

  /**
   * Attaches, retrying with back-off until it works or close() is called.
   * The first time, it rehearses a handoff and settles the heap first (a
   * few ms of the boot; see `rehearse` and `settleHeap`).
   */
  start(): void {
    if (this.#prepared) {
      this.attach().catch(() => this.#scheduleRetry());
      return;
    }
    this.#prepared = true;
    void this.#prepare().then(() => {
      if (!this.#closed) this.attach().catch(() => this.#scheduleRetry());
    });
  }

  async #prepare(): Promise<void> {
    if (this.#options.rehearse !== false) {
      const probe = rehearsalProbe();
      const adopt = rehearsalAdopter(this.#options.server, probe);
      if (adopt !== null) await rehearseHandoff(adopt, this.#options.serviceName, probe);
    }
    // After the rehearsal: its garbage goes too.
    if (this.#options.settleHeap !== false) collectGarbageNow();
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
    this.#channel = null;
    acceptor?.close();
  }
}
