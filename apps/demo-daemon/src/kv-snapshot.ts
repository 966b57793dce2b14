// The store's contents as bytes a successor daemon can load: what this daemon
// deposits in its broker's fd store (as a memfd named kv-state) when it is
// stopped, and loads when it gets one back. Versioned and bounded; loading
// trusts nothing in the bytes (another process wrote them).
//
//   "HKVS" | u8 version = 1 | u64 saved-at (unix ms) | u32 count |
//   count × ( u16 key length | u32 value length | u32 ttl ms (0: none) | key | value )
//
// All integers little-endian.
import type { KvStore } from './kv-store.js';

const MAGIC = 'HKVS';
export const KV_SNAPSHOT_VERSION = 1;
const HEADER_BYTES = 4 + 1 + 8 + 4;
const ENTRY_HEADER_BYTES = 2 + 4 + 4;

export type KvSnapshotErrorCode = 'BAD_SNAPSHOT' | 'UNKNOWN_VERSION' | 'TOO_LARGE';

export class KvSnapshotError extends Error {
  override readonly name = 'KvSnapshotError';
  readonly code: KvSnapshotErrorCode;
  constructor(code: KvSnapshotErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The most bytes a snapshot of `store` can take: its caps plus the framing. */
export function maxSnapshotBytes(store: KvStore): number {
  return HEADER_BYTES + store.maxBytes + store.maxEntries * ENTRY_HEADER_BYTES;
}

/** Every live entry of `store`, least recently used first. */
export function encodeKvSnapshot(store: KvStore, now = Date.now()): Uint8Array {
  const entries = [...store.liveEntries()];
  let size = HEADER_BYTES;
  for (const e of entries) size += ENTRY_HEADER_BYTES + e.key.length + e.value.length;
  const out = Buffer.alloc(size);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt8(KV_SNAPSHOT_VERSION, 4);
  out.writeBigUInt64LE(BigInt(now), 5);
  out.writeUInt32LE(entries.length, 13);
  let at = HEADER_BYTES;
  for (const e of entries) {
    out.writeUInt16LE(e.key.length, at);
    out.writeUInt32LE(e.value.length, at + 2);
    out.writeUInt32LE(e.ttlRemainingMs, at + 6);
    at += ENTRY_HEADER_BYTES;
    out.set(e.key, at);
    at += e.key.length;
    out.set(e.value, at);
    at += e.value.length;
  }
  return out;
}

export interface KvSnapshotLoad {
  /** Entries set in the store. */
  loaded: number;
  /** Entries skipped: the key was already there (the new daemon's writes win), expired meanwhile, or refused by the store's caps. */
  skipped: number;
}

/**
 * Loads a snapshot into `store`: keys it already has win, a TTL keeps
 * counting from when the snapshot was saved. Throws KvSnapshotError for
 * bytes that do not read — before setting anything.
 */
export function loadKvSnapshot(
  store: KvStore,
  bytes: Uint8Array,
  now = Date.now(),
): KvSnapshotLoad {
  const entries = readKvSnapshot(bytes, store.maxEntries);
  let loaded = 0;
  let skipped = 0;
  for (const e of entries) {
    const ttl = e.ttlMs === 0 ? 0 : e.ttlMs - Math.max(0, now - e.savedAt);
    try {
      if (ttl < 0 || (e.ttlMs !== 0 && ttl === 0) || store.has(e.key)) {
        skipped++;
        continue;
      }
      store.set(e.key, e.value, ttl);
      loaded++;
    } catch {
      // Over this store's caps (a smaller store than the one that saved it).
      skipped++;
    }
  }
  return { loaded, skipped };
}

interface SnapshotEntry {
  key: Uint8Array;
  value: Uint8Array;
  ttlMs: number;
  savedAt: number;
}

function readKvSnapshot(bytes: Uint8Array, maxEntries: number): SnapshotEntry[] {
  const bad = (why: string) => new KvSnapshotError('BAD_SNAPSHOT', `kv snapshot: ${why}`);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.length < HEADER_BYTES || view.toString('latin1', 0, 4) !== MAGIC) throw bad('no header');
  const version = view.readUInt8(4);
  if (version !== KV_SNAPSHOT_VERSION)
    throw new KvSnapshotError(
      'UNKNOWN_VERSION',
      `kv snapshot version ${version} is not ${KV_SNAPSHOT_VERSION}`,
    );
  const savedAt = Number(view.readBigUInt64LE(5));
  const count = view.readUInt32LE(13);
  if (count > maxEntries)
    throw new KvSnapshotError('TOO_LARGE', `${count} entries, over ${maxEntries}`);
  const out: SnapshotEntry[] = [];
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + ENTRY_HEADER_BYTES > view.length) throw bad(`entry ${i} is cut short`);
    const keyLength = view.readUInt16LE(at);
    const valueLength = view.readUInt32LE(at + 2);
    const ttlMs = view.readUInt32LE(at + 6);
    at += ENTRY_HEADER_BYTES;
    if (at + keyLength + valueLength > view.length) throw bad(`entry ${i} is cut short`);
    out.push({
      key: view.subarray(at, at + keyLength),
      value: view.subarray(at + keyLength, at + keyLength + valueLength),
      ttlMs,
      savedAt,
    });
    at += keyLength + valueLength;
  }
  if (at !== view.length) throw bad(`${view.length - at} bytes after the last entry`);
  return out;
}
