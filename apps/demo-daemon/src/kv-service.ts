// The one command model both wires share, and KvService, which runs a
// command against the store. The line wire (line-protocol.ts) and the framed
// wire (kv-protocol.ts) only translate bytes to a KvCommand and a KvReply
// back to bytes; what a command means is decided here, once.
import { type KvStore, KvStoreError } from './kv-store.js';

export type KvCommand =
  /** `waitMs` > 0: when missing, wait that long for the key to be set. */
  | { op: 'get'; key: Uint8Array; waitMs: number }
  /** `ttlMs` 0 = no expiry. */
  | { op: 'set'; key: Uint8Array; value: Uint8Array; ttlMs: number }
  | { op: 'delete'; key: Uint8Array }
  | { op: 'stats' };

/**
 * Why a command failed; the same names on both wires. UNKNOWN stands for a
 * code this build does not know (a newer daemon's), never sent by this one.
 */
export type KvErrorCode =
  | 'MALFORMED_REQUEST'
  | 'INVALID_KEY'
  | 'INVALID_VALUE'
  | 'INVALID_ARGUMENT'
  | 'BUSY'
  | 'TOO_LARGE'
  | 'UNKNOWN';

/** STATS: the store's counters plus the daemon's. 64-bit on the framed wire, so bigint here. */
export interface KvStats {
  entries: number;
  bytes: bigint;
  maxEntries: number;
  maxBytes: bigint;
  hits: bigint;
  misses: bigint;
  sets: bigint;
  deletes: bigint;
  expired: bigint;
  evicted: bigint;
  /** Open client connections, both wires. */
  connections: number;
  /** Connections a broker handed over since the daemon started. */
  handoffs: bigint;
  uptimeMs: bigint;
  /** GETs waiting for their key right now. */
  waiting: number;
}

export type KvReply =
  | { result: 'found'; value: Uint8Array; ttlRemainingMs: number }
  | { result: 'notFound' }
  | { result: 'stored' }
  | { result: 'deleted' }
  | { result: 'stats'; stats: KvStats }
  | { result: 'failure'; code: KvErrorCode; message: string };

/** What the daemon adds to STATS; the store cannot know it. */
export interface DaemonCounters {
  connections(): number;
  handoffs(): number;
}

export class KvService {
  private readonly startedAt = performance.now();

  constructor(
    readonly store: KvStore,
    private readonly daemon: DaemonCounters,
  ) {}

  /**
   * Runs `command`; a promise only for a GET that may wait, which
   * `context.signal` ends early (the client cancelled, or the daemon gave up
   * on it). The signal is read only then: serveDaemon's request context
   * makes its AbortController on first read, and most requests need none.
   */
  execute(
    command: KvCommand,
    context?: { readonly signal: AbortSignal },
  ): KvReply | Promise<KvReply> {
    if (command.op === 'get' && command.waitMs > 0)
      return this.waitingGet(command, context?.signal);
    return this.executeNow(command);
  }

  /** Runs `command` at once: a GET answers what is there now, whatever its waitMs. */
  executeNow(command: KvCommand): KvReply {
    try {
      switch (command.op) {
        case 'get':
          return found(this.store.get(command.key));
        case 'set':
          this.store.set(command.key, command.value, command.ttlMs);
          return { result: 'stored' };
        case 'delete':
          return this.store.delete(command.key) ? { result: 'deleted' } : { result: 'notFound' };
        case 'stats':
          return { result: 'stats', stats: this.stats() };
      }
    } catch (error) {
      return failure(error);
    }
  }

  private async waitingGet(
    command: KvCommand & { op: 'get' },
    signal: AbortSignal | undefined,
  ): Promise<KvReply> {
    try {
      return found(await this.store.waitFor(command.key, command.waitMs, signal));
    } catch (error) {
      return failure(error);
    }
  }

  private stats(): KvStats {
    const s = this.store.stats();
    return {
      entries: s.entries,
      bytes: BigInt(s.bytes),
      maxEntries: s.maxEntries,
      maxBytes: BigInt(s.maxBytes),
      hits: BigInt(s.hits),
      misses: BigInt(s.misses),
      sets: BigInt(s.sets),
      deletes: BigInt(s.deletes),
      expired: BigInt(s.expired),
      evicted: BigInt(s.evicted),
      connections: this.daemon.connections(),
      handoffs: BigInt(this.daemon.handoffs()),
      uptimeMs: BigInt(Math.floor(performance.now() - this.startedAt)),
      waiting: this.store.waiting,
    };
  }
}

function found(hit: { value: Uint8Array; ttlRemainingMs: number } | undefined): KvReply {
  return hit
    ? { result: 'found', value: hit.value, ttlRemainingMs: hit.ttlRemainingMs }
    : { result: 'notFound' };
}

/** A refusal by the store becomes an answer; anything else is a bug and is rethrown. */
function failure(error: unknown): KvReply {
  if (error instanceof KvStoreError) {
    return { result: 'failure', code: error.code, message: error.message };
  }
  throw error;
}
