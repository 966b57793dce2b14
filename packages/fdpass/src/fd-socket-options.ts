// The options an FdSocket is made with: their types, their checks (a usage
// TypeError before any syscall) and their defaults. Shared by every way of
// making one (pair, connect, adopt, FdServer). What the options do lives in
// fd-socket.ts and the reader and writer it is made of.
import type { NativeBinding } from './native-loader.js';

export type SocketKind = 'stream' | 'seqpacket';

export interface FdSocketOptions {
  /** Per-message fd limit for both directions, 0..253 (default 253). */
  maxFdsPerMessage?: number;
  /**
   * Largest message read at once (default 256 KiB for seqpacket, 64 KiB for
   * stream). A longer SEQPACKET message is reported as ERR_DATA_TRUNCATED;
   * on a stream it is simply delivered over several 'message' events.
   */
  maxMessageSize?: number;
  /** Messages read per readiness event before yielding to the loop (default 64). */
  readBudget?: number;
  /** Keep the writing side open after the peer ends (default false). */
  allowHalfOpen?: boolean;
  /** write() returns false once this many bytes are queued (default 16 KiB). */
  highWaterMark?: number;
  /**
   * write() returns false once this many messages are queued (default 16).
   * Each queued message holds a duplicate of every fd it carries, and the
   * kernel's own buffer is the real one, so a short user-space queue is
   * cheaper than a long one, even of tiny messages.
   */
  highWaterMessages?: number;
}

export interface ConnectOptions extends FdSocketOptions {
  kind?: SocketKind;
  signal?: AbortSignal;
}

/** The options with every default filled in. */
export interface SocketSettings {
  readonly maxFds: number;
  readonly maxBytes: number;
  readonly budget: number;
  readonly allowHalfOpen: boolean;
  readonly highWaterMark: number;
  readonly highWaterMessages: number;
}

/** A platform default: Linux keeps message boundaries with SEQPACKET. */
export const defaultSocketKind: SocketKind = process.platform === 'linux' ? 'seqpacket' : 'stream';

const DEFAULT_HIGH_WATER_MARK = 16 * 1024;
const DEFAULT_HIGH_WATER_MESSAGES = 16;
const DEFAULT_READ_BUDGET = 64;

export function kindToType(native: NativeBinding, kind: SocketKind): number {
  if (kind === 'stream') return native.constants.SOCK_STREAM;
  if (kind === 'seqpacket') return native.constants.SOCK_SEQPACKET;
  throw new TypeError(`Usage: kind must be 'stream' or 'seqpacket', got ${String(kind)}`);
}

export function validateSocketOptions(opts: FdSocketOptions | undefined, where: string): void {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null) {
    throw new TypeError(`Usage: ${where}: options must be an object`);
  }
  const m = opts.maxFdsPerMessage;
  if (m !== undefined && (!Number.isInteger(m) || m < 0 || m > 253)) {
    throw new TypeError(`Usage: ${where}: maxFdsPerMessage must be an integer 0..253`);
  }
  for (const key of ['maxMessageSize', 'readBudget'] as const) {
    const v = opts[key];
    if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > 2 ** 26)) {
      throw new TypeError(`Usage: ${where}: ${key} must be an integer 1..2^26`);
    }
  }
  for (const key of ['highWaterMark', 'highWaterMessages'] as const) {
    const h = opts[key];
    if (h !== undefined && (!Number.isInteger(h) || h < 0)) {
      throw new TypeError(`Usage: ${where}: ${key} must be a non-negative integer`);
    }
  }
}

/** Fills in the defaults of options already validated. */
export function socketSettings(
  kind: SocketKind,
  opts: FdSocketOptions | undefined,
): SocketSettings {
  return {
    maxFds: opts?.maxFdsPerMessage ?? 253,
    maxBytes: opts?.maxMessageSize ?? (kind === 'seqpacket' ? 256 * 1024 : 64 * 1024),
    budget: opts?.readBudget ?? DEFAULT_READ_BUDGET,
    allowHalfOpen: opts?.allowHalfOpen ?? false,
    highWaterMark: opts?.highWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    highWaterMessages: opts?.highWaterMessages ?? DEFAULT_HIGH_WATER_MESSAGES,
  };
}
