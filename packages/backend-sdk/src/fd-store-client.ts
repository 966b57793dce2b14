// The daemon's side of the broker's fd store, as bytes: deposits encoded in
// messages that fit one seqpacket read (each with its fds), and deliveries
// read hostile-safe. Sending and the 'fds' event are broker-attachment.ts's.
import {
  encodeFramed,
  eventFrame,
  FdStoreEntries,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  tryDecodeFramed,
} from '@handoff/protocol';
import { BackendSdkError } from './errors.js';

/** 1..64 bytes of `[A-Za-z0-9._:-]` (the broker refuses any other name). */
export const FD_STORE_NAME = /^[A-Za-z0-9._:-]{1,64}$/;
export const MAX_FD_STORE_METADATA_BYTES = 4096;
/** SCM_MAX_FD. */
const MAX_FDS_PER_MESSAGE = 253;
/** Below the 256 KiB a seqpacket socket reads at once. */
const MAX_MESSAGE_BYTES = 192 * 1024;

export type FdStoreClientErrorCode =
  /** Not attached to a broker (or the attachment did not ask for the fd store). */
  | 'NOT_ATTACHED'
  /** A name outside 1..64 bytes of [A-Za-z0-9._:-], or one name twice. */
  | 'BAD_FD_NAME'
  /** A metadata blob over 4 KiB. */
  | 'METADATA_TOO_LARGE'
  /** The broker's delivery did not read (its fds were closed). */
  | 'BAD_DELIVERY'
  /** The channel refused the message. */
  | 'SEND_FAILED';

export class FdStoreClientError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:FdStoreClientError';
  override readonly name = 'FdStoreClientError';
  declare readonly code: FdStoreClientErrorCode;
  constructor(code: FdStoreClientErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** An fd to keep in the broker's store; the caller keeps its own copy. */
export interface FdToStore {
  name: string;
  fd: number;
  metadata?: Uint8Array;
}

/** An fd the broker gave back: the receiver owns `fd`. */
export interface StoredFdEntry {
  name: string;
  fd: number;
  metadata: Uint8Array;
}

/** Checks `entries` and cuts them into deposit messages (framed EVENT + fds). */
export function depositMessages(
  entries: readonly FdToStore[],
): { data: Uint8Array; fds: number[] }[] {
  const seen = new Set<string>();
  for (const e of entries) {
    if (typeof e.name !== 'string' || !FD_STORE_NAME.test(e.name) || seen.has(e.name))
      throw new FdStoreClientError(
        'BAD_FD_NAME',
        `fd name ${JSON.stringify(e.name)} is not a unique 1..64 of [A-Za-z0-9._:-]`,
      );
    seen.add(e.name);
    if (!Number.isInteger(e.fd) || e.fd < 0)
      throw new TypeError(`storeFds: fd of ${e.name} is not an fd`);
    if ((e.metadata?.length ?? 0) > MAX_FD_STORE_METADATA_BYTES)
      throw new FdStoreClientError(
        'METADATA_TOO_LARGE',
        `metadata of ${e.name} is over ${MAX_FD_STORE_METADATA_BYTES} bytes`,
      );
  }
  const out: { data: Uint8Array; fds: number[] }[] = [];
  let batch: FdToStore[] = [];
  let bytes = 0;
  const flush = () => {
    if (batch.length === 0) return;
    const withMetadata = batch.some((e) => (e.metadata?.length ?? 0) > 0);
    const payload = FdStoreEntries.encode({
      names: batch.map((e) => e.name),
      metadata: withMetadata ? batch.map((e) => e.metadata ?? new Uint8Array(0)) : [],
    });
    const frame = eventFrame(
      { payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL, requestId: 0n, traceparent: '', tracestate: '' },
      { payload },
    );
    out.push({ data: encodeFramed(frame), fds: batch.map((e) => e.fd) });
    batch = [];
    bytes = 0;
  };
  for (const e of entries) {
    const size = e.name.length + (e.metadata?.length ?? 0) + 8;
    if (batch.length === MAX_FDS_PER_MESSAGE || bytes + size > MAX_MESSAGE_BYTES - 64) flush();
    batch.push(e);
    bytes += size;
  }
  flush();
  return out;
}

/**
 * True when a message is one whole handoff EVENT frame, as a delivery is
 * (an offer's message starts with a random 16-byte token instead, which
 * would also have to carry exactly the right frame header to pass).
 */
export function isDeliveryMessage(data: Uint8Array): boolean {
  try {
    const decoded = tryDecodeFramed(data, { maxFrameBytes: MAX_MESSAGE_BYTES });
    return (
      decoded !== null &&
      decoded.consumed === data.length &&
      decoded.frame.kind === FrameKind.EVENT &&
      decoded.frame.payloadProtocol === HANDOFF_PAYLOAD_PROTOCOL
    );
  } catch {
    return false;
  }
}

/**
 * The entries of a delivery message (isDeliveryMessage was true) and its
 * fds. Throws FdStoreClientError BAD_DELIVERY for anything that does not
 * read; the caller then closes the fds.
 */
export function readDelivery(data: Uint8Array, fds: readonly number[]): StoredFdEntry[] {
  const bad = (why: string) => new FdStoreClientError('BAD_DELIVERY', `fd store delivery: ${why}`);
  let decoded: FdStoreEntries;
  try {
    const framed = tryDecodeFramed(data, { maxFrameBytes: MAX_MESSAGE_BYTES });
    if (framed === null) throw bad('incomplete frame');
    decoded = FdStoreEntries.decode(framed.frame.payload);
  } catch (error) {
    if (error instanceof FdStoreClientError) throw error;
    throw bad(`undecodable: ${(error as Error).message}`);
  }
  const { names, metadata } = decoded;
  if (names.length !== fds.length) throw bad(`${names.length} names for ${fds.length} fds`);
  if (metadata.length > names.length)
    throw bad(`${metadata.length} metadata blobs for ${names.length} names`);
  return names.map((name, i) => {
    if (!FD_STORE_NAME.test(name)) throw bad(`bad name ${JSON.stringify(name.slice(0, 80))}`);
    const blob = metadata[i] ?? new Uint8Array(0);
    if (blob.length > MAX_FD_STORE_METADATA_BYTES)
      throw bad(`metadata of ${name} over ${MAX_FD_STORE_METADATA_BYTES} bytes`);
    return { name, fd: fds[i]!, metadata: blob };
  });
}
