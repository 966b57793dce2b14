// File hashes kept on disk between processes, so a daemon that starts again
// does not re-hash the ~100 MB node binary it runs on (about 350 ms of CPU on
// the 2-core reference machine — most of a daemon's start-up, paid again on
// every spawn and rolling restart). An entry is trusted only while the file
// still has the same device, inode, size, mtime and ctime: the kernel sets
// ctime on every change and no unprivileged process can set it back, so a
// rewritten or replaced file always misses. The store lives in a private
// (0700, ours) directory and is best effort: any doubt means hash again.
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { lstat, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** Where hashes persist: `$HANDOFF_HASH_CACHE_DIR`, else `$XDG_CACHE_HOME/handoff/file-hashes`, else `~/.cache/…`; null when `$HANDOFF_HASH_CACHE` is `off`. */
export function defaultHashStoreDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.HANDOFF_HASH_CACHE === 'off') return null;
  if (env.HANDOFF_HASH_CACHE_DIR && isAbsolute(env.HANDOFF_HASH_CACHE_DIR))
    return env.HANDOFF_HASH_CACHE_DIR;
  const base =
    env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)
      ? env.XDG_CACHE_HOME
      : join(homedir(), '.cache');
  return join(base, 'handoff', 'file-hashes');
}

export interface StoredHashes {
  blake3: Uint8Array;
  sha256: Uint8Array;
}

/** An entry is a few hundred bytes; anything larger is not ours. */
const MAX_ENTRY_BYTES = 4096;
const ENTRY_VERSION = 1;

/** The file's identity an entry is valid for. */
function fingerprint(path: string, info: BigIntStats): string {
  return [path, info.dev, info.ino, info.size, info.mtimeNs, info.ctimeNs].join('\0');
}

export class HashStore {
  /** The directory is checked once: private and ours, or the store is off. */
  readonly #usable: Promise<boolean>;

  constructor(readonly dir: string) {
    this.#usable = privateDirectory(dir);
  }

  /** The stored hashes of `path` if they are still valid for `info` (a fresh stat of it). */
  async read(path: string, info: BigIntStats): Promise<StoredHashes | null> {
    if (!(await this.#usable)) return null;
    const file = this.#entryFile(path);
    try {
      const entryInfo = await lstat(file);
      if (!entryInfo.isFile() || entryInfo.size > MAX_ENTRY_BYTES) return null;
      const entry: unknown = JSON.parse(await readFile(file, 'utf8'));
      return validEntry(entry, fingerprint(path, info));
    } catch {
      return null;
    }
  }

  /**
   * Records `hashes` for `path`, taken when it had `info` — only if the file
   * still has it now (it did not change while it was being hashed).
   */
  async write(path: string, info: BigIntStats, hashes: StoredHashes): Promise<void> {
    if (!(await this.#usable)) return;
    try {
      const now = await stat(path, { bigint: true });
      if (fingerprint(path, now) !== fingerprint(path, info)) return;
      const file = this.#entryFile(path);
      const temp = `${file}.${process.pid}.tmp`;
      const entry = {
        v: ENTRY_VERSION,
        key: fingerprint(path, info),
        blake3: Buffer.from(hashes.blake3).toString('hex'),
        sha256: Buffer.from(hashes.sha256).toString('hex'),
      };
      await writeFile(temp, JSON.stringify(entry), { mode: 0o600 });
      // rename(2) is atomic: a reader sees the old entry or the new one, never half.
      await rename(temp, file).catch(async (error: unknown) => {
        await unlink(temp).catch(() => {});
        throw error;
      });
    } catch {
      // Best effort: the next start hashes again.
    }
  }

  #entryFile(path: string): string {
    return join(this.dir, `${createHash('sha256').update(path).digest('hex')}.json`);
  }
}

function validEntry(entry: unknown, key: string): StoredHashes | null {
  if (typeof entry !== 'object' || entry === null) return null;
  const e = entry as Record<string, unknown>;
  if (e.v !== ENTRY_VERSION || e.key !== key) return null;
  const blake3 = hexBytes(e.blake3);
  const sha256 = hexBytes(e.sha256);
  return blake3 && sha256 ? { blake3, sha256 } : null;
}

function hexBytes(value: unknown): Uint8Array | null {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) return null;
  return new Uint8Array(Buffer.from(value, 'hex'));
}

/** Creates `dir` (0700) if needed; true if it is a directory we own that nobody else can write. */
async function privateDirectory(dir: string): Promise<boolean> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const info = await lstat(dir);
    const uid = process.getuid?.();
    return (
      info.isDirectory() && (uid === undefined || info.uid === uid) && (info.mode & 0o077) === 0
    );
  } catch {
    return false;
  }
}
