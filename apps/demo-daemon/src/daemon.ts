// startDemoDaemon: the wiring a daemon built on handoff needs, in the order
// it needs it — an identity, serveDaemon with both wires on one endpoint,
// the identity sidecar, the broker attachment for handed-off connections, an
// idle timeout, and a graceful close. The cache is KvService's; process
// concerns (environment, signals, exit codes) are daemon-main.ts's.

import type { Socket } from 'node:net';
import {
  BrokerAttachment,
  type CurrentDaemonOptions,
  currentDaemonProcess,
  type DaemonIdentity,
  type DaemonServer,
  type HandoffEvent,
  type HandoffRejection,
  type RequestContext,
  readIdentitySidecar,
  removeIdentitySidecar,
  type ServerConnectionError,
  SlotSet,
  type StoredFdEntry,
  serveDaemon,
  writeIdentitySidecar,
} from '@handoff/backend-sdk';
import { type Frame, MAX_FRAME_BYTES, PayloadEncoding, utf8ByteLength } from '@handoff/protocol';
import pino, { type Logger } from 'pino';
import {
  adoptFromPredecessor,
  DEFAULT_CUTOVER_WAIT_MS,
  DEFAULT_MAX_HANDED_OVER_LINES,
  type Deposit,
  depositForSuccessor,
} from './fd-handover.js';
import {
  decodeRequest,
  encodeResponse,
  KV_PAYLOAD_PROTOCOL,
  KvProtocolError,
} from './kv-protocol.js';
import { type KvCommand, KvService } from './kv-service.js';
import { KvStore, type KvStoreOptions } from './kv-store.js';
import { DEFAULT_MAX_QUEUED_ANSWER_BYTES, LineConnection } from './line-connection.js';
import { DEFAULT_MAX_LINE_BYTES, detectLineProtocol } from './line-protocol.js';
import { DEMO_KV_SERVICE_NAME } from './service-definition.js';
import { rehearseTakeover } from './takeover-rehearsal.js';

export interface DemoDaemonOptions {
  /** The Unix socket both wires share; its directory must be private (0700, ours). */
  endpoint: string;
  /** The name a broker routes by (default "demo-kv"). */
  serviceName?: string;
  /** A broker's control socket: attach to it so it can hand clients over. Omit to serve alone. */
  brokerControlPath?: string;
  /** Stop after this long without a single open connection (default 0: never). */
  idleTimeoutSecs?: number;
  /** How long close() lets running requests finish (default 5000 ms). */
  drainDeadlineMs?: number;
  /** Longest line the line wire accepts (default 64 KiB). */
  maxLineBytes?: number;
  /**
   * A connection's answers are produced only while fewer unsent bytes than
   * this are queued for it (default 1 MiB), on both wires: serveDaemon's
   * for framed connections, LineConnection's for the line wire. Meanwhile
   * the connection is not read.
   */
  maxQueuedAnswerBytes?: number;
  /** Its maxValueBytes may not exceed MAX_ANSWERABLE_VALUE_BYTES: a GET answers the value in one frame. */
  store?: KvStoreOptions;
  /** Structured logs; default: none. */
  logger?: Logger;
  /**
   * Under a broker, stopped by SIGTERM (a restart, an idle stop, the broker
   * closing): leave the store's contents and the line-wire connections in
   * the broker's fd store, and take them back when started next (default
   * true). The lines are served on until a successor holds them, then cut
   * over at a line boundary. See fd-handover.ts and line-cutover.ts.
   */
  fdStore?: boolean;
  /**
   * Cut line connections over live (line-cutover.ts): served until the
   * successor holds them (default true). false: only idle ones are
   * deposited, and a client waits out the whole hand-over.
   */
  lineCutover?: boolean;
  /** Line connections handed over at most (default 14: the state, the cut-over pair and these fit the broker's default of 16 fds). */
  maxHandedOverLines?: number;
  /**
   * Under a broker with the fd store on: before attaching, rehearse a
   * takeover (takeover-rehearsal.ts), so that the code a rolling restart
   * runs on live sessions is compiled at boot rather than on them (default
   * true; a few ms of the boot).
   */
  rehearseTakeover?: boolean;
  /** Passed to currentDaemonProcess (e.g. the entry script whose hash the identity carries). */
  identity?: Pick<CurrentDaemonOptions, 'entryScript' | 'hashCache'>;
}

/** Why a daemon stopped: close() was called ("requested", or the caller's word), or it idled out. */
export type StopReason = string;

export interface DemoDaemon {
  readonly endpoint: string;
  readonly sidecarPath: string;
  readonly store: KvStore;
  /** Resolves once the daemon has stopped (socket and sidecar gone), with why. */
  readonly stopped: Promise<StopReason>;
  /**
   * Stops: detaches from the broker, removes the sidecar, stops accepting,
   * lets running requests finish until the drain deadline, removes the socket.
   */
  close(reason?: StopReason): Promise<void>;
}

export async function startDemoDaemon(options: DemoDaemonOptions): Promise<DemoDaemon> {
  const daemon = new DemoDaemonImpl(options);
  await daemon.start();
  return daemon;
}

/** setTimeout fires at once for longer delays, so the idle timeout stops here. */
const MAX_TIMER_MS = 2_147_483_647;
/** Protobuf tags and lengths around a key and a value never take more than this. */
const REQUEST_OVERHEAD_BYTES = 64;
/** A RESPONSE frame's fields but its payload and the trace context it echoes: tags, lengths, ids. */
const RESPONSE_FRAME_OVERHEAD_BYTES = 64;
/** What a Found answer adds to its value: Response and Found tags and lengths, the TTL. */
const FOUND_OVERHEAD_BYTES = 32;
/** Room for the trace context a response echoes: W3C's traceparent (55) and a 512-byte tracestate fit. */
const TRACE_CONTEXT_ROOM_BYTES = 1024;

/**
 * The largest value a store may accept: its GET answer still fits one frame
 * beside an ordinary trace context. A larger one could be stored but never
 * read back.
 */
export const MAX_ANSWERABLE_VALUE_BYTES =
  MAX_FRAME_BYTES - RESPONSE_FRAME_OVERHEAD_BYTES - FOUND_OVERHEAD_BYTES - TRACE_CONTEXT_ROOM_BYTES;

class DemoDaemonImpl implements DemoDaemon {
  readonly endpoint: string;
  readonly sidecarPath: string;
  readonly store: KvStore;
  readonly stopped: Promise<StopReason>;
  private readonly options: DemoDaemonOptions;
  private readonly log: Logger;
  private readonly service: KvService;
  private readonly serviceName: string;
  private readonly idleMs: number;
  private readonly maxRequestBytes: number;
  private readonly maxQueuedAnswerBytes: number;
  /** A SlotSet, not a Set: connections churn, and a Set would slow the GC (see @handoff/backend-sdk). */
  private readonly lineConnections = new SlotSet<LineConnection>();
  private server: DaemonServer | null = null;
  private attachment: BrokerAttachment | null = null;
  /** Ids of open client connections, both wires (see wire()); adopted line connections count down from -1. */
  private readonly openConnections = new Set<number>();
  private adoptedLines = 0;
  /**
   * Each line's place in the queue for a deposit (at most maxHandedOverLines
   * cross): a predecessor's lines first, in its order (they were connected
   * before this daemon existed), then ours by age. The oldest sessions are
   * the ones a restart must keep; a connection opened a moment ago is most
   * likely a one-request client that is about to close anyway.
   */
  private readonly lineSeniority = new WeakMap<LineConnection, number>();
  private linesOpened = 0;
  private handoffs = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private markStopped: (reason: StopReason) => void = () => {};

  constructor(options: DemoDaemonOptions) {
    this.options = options;
    this.endpoint = options.endpoint;
    this.sidecarPath = `${options.endpoint}.identity.json`;
    this.serviceName = options.serviceName ?? DEMO_KV_SERVICE_NAME;
    const idleSecs = options.idleTimeoutSecs ?? 0;
    if (!Number.isInteger(idleSecs) || idleSecs < 0 || idleSecs * 1000 > MAX_TIMER_MS) {
      throw new RangeError(
        `idleTimeoutSecs must be an integer from 0 to ${(MAX_TIMER_MS / 1000) | 0}`,
      );
    }
    this.idleMs = idleSecs * 1000;
    this.log = options.logger ?? pino({ level: 'silent' });
    this.store = new KvStore(options.store);
    if (this.store.maxValueBytes > MAX_ANSWERABLE_VALUE_BYTES) {
      throw new RangeError(
        `store.maxValueBytes must be at most ${MAX_ANSWERABLE_VALUE_BYTES}: a GET answers the value in one frame of at most ${MAX_FRAME_BYTES} bytes`,
      );
    }
    this.service = new KvService(this.store, {
      connections: () => this.openConnections.size,
      handoffs: () => this.handoffs,
    });
    this.maxRequestBytes =
      this.store.maxKeyBytes + this.store.maxValueBytes + REQUEST_OVERHEAD_BYTES;
    this.maxQueuedAnswerBytes = options.maxQueuedAnswerBytes ?? DEFAULT_MAX_QUEUED_ANSWER_BYTES;
    this.stopped = new Promise((resolve) => {
      this.markStopped = resolve;
    });
  }

  async start(): Promise<void> {
    // The identity is what probes are answered with, and what the sidecar
    // records; it names the idle timeout so a broker knows we may leave.
    const identity = await currentDaemonProcess(this.endpoint, {
      ...this.options.identity,
      ...(this.idleMs > 0 ? { idleTimeoutSecs: this.idleMs / 1000 } : {}),
    });
    this.server = await serveDaemon({
      endpoint: this.endpoint,
      identity,
      payloadProtocols: [KV_PAYLOAD_PROTOCOL],
      onRequest: (frame, context) => this.onRequest(frame, context),
      maxQueuedAnswerBytes: this.maxQueuedAnswerBytes,
      legacyDetector: detectLineProtocol,
      onLegacy: (socket, alreadyRead) => void this.serveLines(socket, alreadyRead),
    });
    try {
      await this.wire(identity);
    } catch (error) {
      // Half started is not started: give the socket back before failing.
      await this.server.close({ deadlineMs: 0 });
      throw error;
    }
  }

  private serveLines(
    socket: Socket,
    alreadyRead: Uint8Array,
    fromPredecessor = false,
  ): LineConnection {
    const connection = new LineConnection(socket, alreadyRead, {
      maxLineBytes: this.options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
      maxQueuedAnswerBytes: this.maxQueuedAnswerBytes,
      execute: (command) => this.service.executeNow(command),
      onProtocolError: (error) =>
        this.log.debug({ code: error.code }, `line wire: ${error.message}`),
      // Our bug, not the client's: the client got ERROR INTERNAL and goes on.
      onAnswerError: (error) => this.log.error({ err: error }, 'line wire: answer failed'),
    });
    const order = ++this.linesOpened;
    this.lineSeniority.set(connection, fromPredecessor ? order - Number.MAX_SAFE_INTEGER : order);
    const slot = this.lineConnections.add(connection);
    void connection.closed.then(() => this.lineConnections.delete(slot, connection));
    return connection;
  }

  /**
   * A line connection a predecessor left in the fd store, with the bytes it
   * read and did not answer: served, and counted like any other.
   */
  private adoptLine(socket: Socket, rest: Uint8Array): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const id = -++this.adoptedLines;
    this.openConnections.add(id);
    this.disarmIdle();
    void this.serveLines(socket, rest, true).closed.then(() => {
      if (this.openConnections.delete(id) && this.openConnections.size === 0) this.armIdle();
    });
  }

  /** Everything after listening: counters, logs, the sidecar, the broker, the idle timer. */
  private async wire(identity: DaemonIdentity): Promise<void> {
    const server = this.server!;
    // Every connection counts, whichever wire, whoever accepted it; the
    // idle timer runs only while there are none. These listeners go on
    // before this method's first await: serveDaemon holds connections that
    // arrived while it started until just after its caller resumed, so none
    // is missed. Ids, not a counter, all the same: a close is subtracted only
    // for a connection that was counted.
    server.on('connection', (event: { connectionId: number; adopted: boolean }) => {
      this.openConnections.add(event.connectionId);
      this.disarmIdle();
      if (event.adopted) this.handoffs++;
    });
    server.on('connectionClosed', (connectionId: number) => {
      if (this.openConnections.delete(connectionId) && this.openConnections.size === 0) {
        this.armIdle();
      }
    });
    server.on('connectionError', (error: ServerConnectionError) => {
      // HANDLER would be our bug (onRequest never throws by design); the
      // rest are a client's faults, and cost only that client its connection.
      const level = error.code === 'HANDLER' ? 'error' : 'info';
      this.log[level]({ code: error.code, connection: error.connectionId }, error.message);
    });
    await writeIdentitySidecar(this.sidecarPath, identity);
    if (this.options.brokerControlPath) {
      if (this.options.fdStore !== false && this.options.rehearseTakeover !== false) {
        const started = performance.now();
        const ok = await rehearseTakeover({
          maxLineBytes: this.options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
          maxQueuedAnswerBytes: this.maxQueuedAnswerBytes,
        });
        this.log.debug({ ok, ms: Math.round(performance.now() - started) }, 'takeover rehearsed');
      }
      this.attach(this.options.brokerControlPath);
    }
    this.armIdle();
    this.log.info(
      {
        endpoint: this.endpoint,
        protocol: KV_PAYLOAD_PROTOCOL.id,
        broker: this.options.brokerControlPath ?? null,
        idleTimeoutSecs: this.idleMs / 1000,
      },
      'listening',
    );
  }

  /** The persistent control channel over which a broker hands us client connections. */
  private attach(controlPath: string): void {
    const attachment = new BrokerAttachment({
      controlPath,
      server: this.server!,
      serviceName: this.serviceName,
      fdStore: this.options.fdStore !== false,
    });
    attachment.on('fds', (entries: StoredFdEntry[]) =>
      adoptFromPredecessor(
        entries,
        this.store,
        (socket, rest) => this.adoptLine(socket, rest),
        this.log,
      ),
    );
    attachment.on('attached', () => this.log.info({ broker: controlPath }, 'attached to broker'));
    attachment.on('detached', () =>
      this.log.warn({ broker: controlPath }, 'broker went away; serving on, reattaching'),
    );
    attachment.on('handoff', (event: HandoffEvent) =>
      this.log.debug(
        { correlationId: String(event.correlationId), bufferedBytes: event.bufferedBytes },
        'connection handed off',
      ),
    );
    attachment.on('rejected', (event: HandoffRejection) =>
      this.log.warn(
        { correlationId: String(event.correlationId), reason: event.reason },
        'handoff refused',
      ),
    );
    attachment.start();
    this.attachment = attachment;
  }

  /**
   * Never throws: a request we cannot decode is answered with a typed
   * failure (a throw would make serveDaemon drop the whole connection).
   */
  private onRequest(frame: Frame, context: RequestContext): Uint8Array | Promise<Uint8Array> {
    if (frame.payloadEncoding !== PayloadEncoding.NONE) {
      return encodeResponse({
        result: 'failure',
        code: 'MALFORMED_REQUEST',
        message: `payload encoding ${PayloadEncoding[frame.payloadEncoding] ?? frame.payloadEncoding} is not supported`,
      });
    }
    let command: KvCommand;
    try {
      command = decodeRequest(frame.payload, { maxBytes: this.maxRequestBytes });
    } catch (error) {
      if (!(error instanceof KvProtocolError)) throw error;
      return encodeResponse({
        result: 'failure',
        code: error.code === 'TOO_LARGE' ? 'TOO_LARGE' : 'MALFORMED_REQUEST',
        message: error.message,
      });
    }
    const reply = this.service.execute(command, context);
    return reply instanceof Promise
      ? reply.then((r) => fitted(frame, encodeResponse(r)))
      : fitted(frame, encodeResponse(reply));
  }

  private armIdle(): void {
    if (this.idleMs === 0 || this.closing || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.log.info({ idleTimeoutSecs: this.idleMs / 1000 }, 'idle timeout');
      void this.close('idle');
    }, this.idleMs);
  }

  private disarmIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  close(reason: StopReason = 'requested'): Promise<void> {
    this.closing ??= this.shutdown(reason);
    return this.closing;
  }

  private async shutdown(reason: StopReason): Promise<void> {
    this.log.info({ reason }, 'shutting down');
    this.disarmIdle();
    // Stopped by our broker (or anyone, by SIGTERM): what the next daemon
    // of this service can use goes to the broker's fd store first.
    // The lines deposited are served on until the successor holds them
    // (the cut-over ends them here); the rest drain below.
    const deadlineMs = this.options.drainDeadlineMs ?? 5000;
    let deposit: Deposit | null = null;
    if (reason === 'SIGTERM' && this.attachment?.attached && this.options.fdStore !== false) {
      const oldestFirst = this.lineConnections
        .values()
        .sort((a, b) => this.seniority(a) - this.seniority(b));
      deposit = await depositForSuccessor(this.attachment, oldestFirst, this.store, {
        maxLines: this.options.maxHandedOverLines ?? DEFAULT_MAX_HANDED_OVER_LINES,
        log: this.log,
        cutoverWaitMs: Math.min(DEFAULT_CUTOVER_WAIT_MS, Math.floor(deadlineMs / 2)),
        cutover: this.options.lineCutover !== false,
      }).catch((error: unknown) => {
        this.log.warn({ err: error }, 'could not deposit with the broker; draining as usual');
        return null;
      });
    }
    // First stop new handoffs, and stop being discoverable: a broker that
    // restarts now must not find us through the sidecar.
    this.attachment?.close();
    await this.removeOwnSidecar();
    for (const connection of this.lineConnections)
      if (!deposit?.lines.has(connection)) connection.drain();
    let timer: NodeJS.Timeout | undefined;
    const lineDeadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    });
    await Promise.all([
      // Framed connections: no new requests; running ones finish or are aborted at the deadline.
      this.server?.close({ deadlineMs }),
      Promise.race([Promise.all(this.lineConnections.values().map((c) => c.closed)), lineDeadline]),
    ]);
    clearTimeout(timer);
    // Settled by now unless the deadline passed first; it closes the pair itself.
    await deposit?.cutover;
    for (const connection of this.lineConnections) connection.destroy();
    this.store.close();
    this.log.info({ reason }, 'stopped');
    this.markStopped(reason);
  }

  private seniority(line: LineConnection): number {
    return this.lineSeniority.get(line) ?? Number.MAX_SAFE_INTEGER;
  }

  /** A sidecar rewritten by a newer daemon on the same endpoint is that daemon's to remove. */
  private async removeOwnSidecar(): Promise<void> {
    const current = await readIdentitySidecar(this.sidecarPath).catch(() => null);
    if (current && current.process.pid !== process.pid) return;
    await removeIdentitySidecar(this.sidecarPath);
  }
}

/**
 * `payload`, or a TOO_LARGE failure when its RESPONSE frame would pass the
 * frame cap (serveDaemon would end the connection): the response echoes the
 * request's trace context, which a client may make as large as it likes.
 */
function fitted(request: Frame, payload: Uint8Array): Uint8Array {
  const trace = utf8ByteLength(request.traceparent) + utf8ByteLength(request.tracestate);
  if (payload.length + trace + RESPONSE_FRAME_OVERHEAD_BYTES <= MAX_FRAME_BYTES) return payload;
  return encodeResponse({
    result: 'failure',
    code: 'TOO_LARGE',
    message: `a ${payload.length}-byte answer and the ${trace}-byte trace context its frame echoes are over the ${MAX_FRAME_BYTES}-byte frame cap`,
  });
}
