// BLAKE3 and SHA-256 of executables and scripts, cached by (device, inode,
// size, mtime): a file that has not changed is never hashed twice in one
// process — nor, with a persistent store (hash-store.ts), in the next one.
// Hashing streams the file once through both digests (hash-wasm's BLAKE3 runs
// at several hundred MB/s; a 100 MB node binary still costs ~350 ms of CPU).
import { createHash } from 'node:crypto';
import { type BigIntStats, createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { HashStore } from './hash-store.js';

export interface FileHashes {
  blake3: Uint8Array;
  sha256: Uint8Array;
}

export interface HashCache {
  get(path: string): Promise<FileHashes>;
  /** Entries held. */
  readonly size: number;
}

const CHUNK = 1 << 20;

// hash-wasm is loaded on the first hash, not with the module: it costs a
// daemon's boot ~50 ms of CPU, and a boot whose hashes come from the
// persistent store never needs it (that is every restart of an unchanged
// daemon, the boot a rolling restart waits for).
async function hashFile(path: string): Promise<FileHashes> {
  const { createBLAKE3 } = await import('hash-wasm');
  const blake3 = await createBLAKE3();
  blake3.init();
  const sha256 = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) {
    blake3.update(chunk as Buffer);
    sha256.update(chunk as Buffer);
  }
  return { blake3: blake3.digest('binary'), sha256: new Uint8Array(sha256.digest()) };
}

export interface HashCacheOptions {
  /**
   * A directory where hashes persist between processes (see
   * `defaultHashStoreDir`); entries there also key on ctime. Default: none,
   * this process's memory only.
   */
  storeDir?: string | null;
}

/** A cache of file hashes keyed by (device, inode, size, mtime). */
export function createHashCache(options: HashCacheOptions = {}): HashCache {
  const entries = new Map<string, Promise<FileHashes>>();
  const store = options.storeDir ? new HashStore(options.storeDir) : null;
  return {
    async get(path) {
      const info = await stat(path, { bigint: true });
      const key = `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}`;
      let hashes = entries.get(key);
      if (!hashes) {
        hashes = store ? storedOrHashed(store, path, info) : hashFile(path);
        entries.set(key, hashes);
        // A failed hash must not poison the cache.
        hashes.catch(() => entries.delete(key));
      }
      return hashes;
    },
    get size() {
      return entries.size;
    },
  };
}

async function storedOrHashed(
  store: HashStore,
  path: string,
  info: BigIntStats,
): Promise<FileHashes> {
  const stored = await store.read(path, info);
  if (stored) return stored;
  const hashes = await hashFile(path);
  await store.write(path, info, hashes);
  return hashes;
}
