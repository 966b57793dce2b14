// The fd store's bytes on a control channel (broker side): reading a
// daemon's deposit (an FdStoreEntries EVENT payload and the fds of its
// message) hostile-safe, and encoding deliveries in messages that fit one
// seqpacket read. What is kept, for how long, is fd-store.ts's.
import {
  encodeFramed,
  eventFrame,
  FdStoreEntries,
  HANDOFF_PAYLOAD_PROTOCOL,
} from '@handoff/protocol';
import { BrokerError } from './errors.js';

/** Names: 1..64 bytes of `[A-Za-z0-9._:-]` (systemd's FDNAME is similar). */
export const FD_STORE_NAME = /^[A-Za-z0-9._:-]{1,64}$/;
export const MAX_FD_STORE_METADATA_BYTES = 4096;
/** SCM_MAX_FD: the kernel carries at most this many fds in one message. */
export const MAX_FDS_PER_MESSAGE = 253;
/**
 * The largest deposit or delivery message: below the 256 KiB a seqpacket
 * FdSocket reads at once, with room for the frame's header fields.
 */
export const MAX_FD_STORE_MESSAGE_BYTES = 192 * 1024;

export type FdStoreErrorCode =
  /** The service's fdStoreMax is 0, or the channel did not offer the fd store. */
  | 'FD_STORE_DISABLED'
  /** The deposit would hold more than fdStoreMax fds for the service. */
  | 'FD_STORE_FULL'
  /** The message's fd count is not the number of names. */
  | 'FD_COUNT_MISMATCH'
  /** A name outside 1..64 bytes of [A-Za-z0-9._:-]. */
  | 'BAD_FD_NAME'
  /** One name twice in one deposit. */
  | 'DUPLICATE_FD_NAME'
  /** A metadata blob over 4 KiB. */
  | 'METADATA_TOO_LARGE'
  /** More than 253 entries in one message. */
  | 'TOO_MANY_FDS'
  /** A payload that does not decode, or more metadata blobs than names. */
  | 'BAD_DEPOSIT'
  /** Fds on a message that is not one whole deposit EVENT frame. */
  | 'FDS_WITHOUT_DEPOSIT'
  /** The store is closed (the broker is stopping). */
  | 'FD_STORE_CLOSED'
  /** An imported snapshot (an upgrade's) that does not read. */
  | 'BAD_STATE';

/** A refused deposit or import: its fds were closed. */
export class FdStoreError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:FdStoreError';
  override readonly name = 'FdStoreError';
  declare readonly code: FdStoreErrorCode;
  constructor(code: FdStoreErrorCode, message: string) {
    super(code, message);
  }
}

export interface FdStoreEntry {
  name: string;
  metadata: Uint8Array;
}

/**
 * The entries of a deposit payload that came with `fdCount` fds, one per
 * name in order. Throws FdStoreError for anything else; never anything
 * else, whatever the bytes.
 */
export function readDeposit(payload: Uint8Array, fdCount: number): FdStoreEntry[] {
  if (fdCount > MAX_FDS_PER_MESSAGE)
    throw new FdStoreError(
      'TOO_MANY_FDS',
      `${fdCount} fds in one message, over ${MAX_FDS_PER_MESSAGE}`,
    );
  let decoded: FdStoreEntries;
  try {
    decoded = FdStoreEntries.decode(payload);
  } catch (error) {
    throw new FdStoreError(
      'BAD_DEPOSIT',
      `undecodable FdStoreEntries: ${(error as Error).message}`,
    );
  }
  const { names, metadata } = decoded;
  if (names.length > MAX_FDS_PER_MESSAGE)
    throw new FdStoreError(
      'TOO_MANY_FDS',
      `${names.length} names in one message, over ${MAX_FDS_PER_MESSAGE}`,
    );
  if (names.length !== fdCount)
    throw new FdStoreError('FD_COUNT_MISMATCH', `${names.length} names for ${fdCount} fds`);
  if (metadata.length > names.length)
    throw new FdStoreError(
      'BAD_DEPOSIT',
      `${metadata.length} metadata blobs for ${names.length} names`,
    );
  const seen = new Set<string>();
  return names.map((name, i) => {
    if (!FD_STORE_NAME.test(name))
      throw new FdStoreError(
        'BAD_FD_NAME',
        `fd name ${JSON.stringify(name.slice(0, 80))} is not 1..64 of [A-Za-z0-9._:-]`,
      );
    if (seen.has(name))
      throw new FdStoreError('DUPLICATE_FD_NAME', `fd name ${name} twice in one deposit`);
    seen.add(name);
    const blob = metadata[i] ?? new Uint8Array(0);
    if (blob.length > MAX_FD_STORE_METADATA_BYTES)
      throw new FdStoreError(
        'METADATA_TOO_LARGE',
        `metadata of ${name} is ${blob.length} bytes, over ${MAX_FD_STORE_METADATA_BYTES}`,
      );
    return { name, metadata: blob };
  });
}

/** One framed FdStoreEntries EVENT: what a delivery (or a deposit) message carries. */
export function fdStoreFrame(entries: readonly FdStoreEntry[]): Uint8Array {
  const withMetadata = entries.some((e) => e.metadata.length > 0);
  const payload = FdStoreEntries.encode({
    names: entries.map((e) => e.name),
    metadata: withMetadata ? entries.map((e) => e.metadata) : [],
  });
  return encodeFramed(
    eventFrame(
      { payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL, requestId: 0n, traceparent: '', tracestate: '' },
      { payload },
    ),
  );
}

/**
 * Cuts entries (each with its fd) into messages of at most 253 fds and
 * about MAX_FD_STORE_MESSAGE_BYTES, in order: one seqpacket message each.
 */
export function fdStoreMessages<T extends FdStoreEntry & { fd: number }>(
  entries: readonly T[],
): { data: Uint8Array; fds: number[] }[] {
  const out: { data: Uint8Array; fds: number[] }[] = [];
  let batch: T[] = [];
  let bytes = 0;
  const flush = () => {
    if (batch.length === 0) return;
    out.push({ data: fdStoreFrame(batch), fds: batch.map((e) => e.fd) });
    batch = [];
    bytes = 0;
  };
  for (const entry of entries) {
    // A name and its blob, with their field tags and lengths.
    const size = entry.name.length + entry.metadata.length + 8;
    if (batch.length === MAX_FDS_PER_MESSAGE || bytes + size > MAX_FD_STORE_MESSAGE_BYTES - 64)
      flush();
    batch.push(entry);
    bytes += size;
  }
  flush();
  return out;
}
