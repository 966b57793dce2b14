// DemoKvClient: the framed wire from a program. It reaches the daemon
// through the broker with connectService — on the same socket after a
// handoff, or by reconnecting to the daemon's socket — or directly on a
// known endpoint, and then speaks Requests over one FrameClient.
import type { Socket } from 'node:net';
import { FrameClient, type RequestOptions } from '@handoff/backend-sdk';
import { connectService } from '@handoff/broker/client';
import {
  decodeResponse,
  encodeRequest,
  KV_PAYLOAD_PROTOCOL,
  KvProtocolError,
} from './kv-protocol.js';
import type { KvCommand, KvErrorCode, KvReply, KvStats } from './kv-service.js';
import type { KvHit } from './kv-store.js';
import { DEMO_KV_SERVICE_NAME, DEMO_KV_SERVICE_VERSION } from './service-definition.js';

export interface DemoKvConnectOptions {
  /** The broker socket (default: $HANDOFF_BROKER_SOCKET, else the per-user default). */
  brokerPath?: string;
  serviceName?: string;
  /** The version asked for (default 1.0.0, this build's). */
  version?: string;
  /** For the whole connect, a daemon spawn included (default 10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * How the connection reached the daemon: through the broker (handoff or
 * reconnect), through connectService's endpoint cache (cache), or straight
 * to a daemon's socket by the caller (direct).
 */
export type DemoKvRoute = 'handoff' | 'reconnect' | 'cache' | 'direct';

export type DemoKvErrorCode = KvErrorCode | 'BAD_RESPONSE';

/** The daemon refused a request (its failure code), or answered nonsense (BAD_RESPONSE). */
export class DemoKvError extends Error {
  override readonly name = 'DemoKvError';
  readonly code: DemoKvErrorCode;
  constructor(code: DemoKvErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

export type KeyOrValue = Uint8Array | string;

/** Per request: a signal, a deadline (which the daemon sees too). */
export type DemoKvRequestOptions = Pick<RequestOptions, 'signal' | 'timeoutMs'>;

const encoder = new TextEncoder();
const bytes = (v: KeyOrValue) => (typeof v === 'string' ? encoder.encode(v) : v);

export class DemoKvClient {
  /** Through the broker, which starts the daemon if none runs. */
  static async connect(options: DemoKvConnectOptions = {}): Promise<DemoKvClient> {
    const { socket, route } = await connectService(options.serviceName ?? DEMO_KV_SERVICE_NAME, {
      version: options.version ?? DEMO_KV_SERVICE_VERSION,
      ...(options.brokerPath === undefined ? {} : { brokerPath: options.brokerPath }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      clientVersion: `demo-kv ${DEMO_KV_SERVICE_VERSION}`,
    });
    return new DemoKvClient(new FrameClient(socket), route);
  }

  /** Straight to a daemon's socket, no broker. */
  static async connectDirect(endpoint: string): Promise<DemoKvClient> {
    return new DemoKvClient(await FrameClient.connect(endpoint), 'direct');
  }

  /** Over a socket already connected to the daemon (say, one from connectService). */
  static fromSocket(socket: Socket, route: DemoKvRoute): DemoKvClient {
    return new DemoKvClient(new FrameClient(socket), route);
  }

  private constructor(
    private readonly frames: FrameClient,
    readonly route: DemoKvRoute,
  ) {}

  /** The value, or undefined when missing; `waitMs` > 0 waits that long for a SET of it. */
  async get(
    key: KeyOrValue,
    options: DemoKvRequestOptions & { waitMs?: number } = {},
  ): Promise<KvHit | undefined> {
    const { waitMs = 0, ...rest } = options;
    const reply = await this.request({ op: 'get', key: bytes(key), waitMs }, rest);
    if (reply.result === 'found')
      return { value: reply.value, ttlRemainingMs: reply.ttlRemainingMs };
    if (reply.result === 'notFound') return undefined;
    throw unexpected('GET', reply);
  }

  /** `ttlMs` 0 (the default) keeps the entry until it is evicted. */
  async set(
    key: KeyOrValue,
    value: KeyOrValue,
    options: DemoKvRequestOptions & { ttlMs?: number } = {},
  ): Promise<void> {
    const { ttlMs = 0, ...rest } = options;
    const reply = await this.request(
      { op: 'set', key: bytes(key), value: bytes(value), ttlMs },
      rest,
    );
    if (reply.result !== 'stored') throw unexpected('SET', reply);
  }

  /** False when there was nothing to delete. */
  async delete(key: KeyOrValue, options: DemoKvRequestOptions = {}): Promise<boolean> {
    const reply = await this.request({ op: 'delete', key: bytes(key) }, options);
    if (reply.result === 'deleted') return true;
    if (reply.result === 'notFound') return false;
    throw unexpected('DEL', reply);
  }

  async stats(options: DemoKvRequestOptions = {}): Promise<KvStats> {
    const reply = await this.request({ op: 'stats' }, options);
    if (reply.result !== 'stats') throw unexpected('STATS', reply);
    return reply.stats;
  }

  /**
   * One command, one reply. A failure reply is thrown as a DemoKvError;
   * connection trouble as the FrameClientError it is.
   */
  async request(command: KvCommand, options: DemoKvRequestOptions = {}): Promise<KvReply> {
    const frame = await this.frames.request(
      KV_PAYLOAD_PROTOCOL.id,
      encodeRequest(command),
      options,
    );
    let reply: KvReply;
    try {
      reply = decodeResponse(frame.payload);
    } catch (error) {
      if (!(error instanceof KvProtocolError)) throw error;
      throw new DemoKvError('BAD_RESPONSE', error.message, error);
    }
    if (reply.result === 'failure') throw new DemoKvError(reply.code, reply.message);
    return reply;
  }

  close(): void {
    this.frames.close();
  }
}

function unexpected(command: string, reply: KvReply): DemoKvError {
  return new DemoKvError('BAD_RESPONSE', `the daemon answered ${command} with ${reply.result}`);
}
