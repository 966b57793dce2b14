import { createHash } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createHashCache, defaultHashStoreDir } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'handoff-hash-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
let n = 0;
const fresh = (content: string) => {
  const file = join(dir, `file-${++n}`);
  writeFileSync(file, content);
  return file;
};
const storeDir = () => join(dir, `store-${++n}`);
const entries = (store: string) => readdirSync(store).filter((f) => f.endsWith('.json'));

describe('the persistent hash store', () => {
  it('gives a later process the hashes without hashing again', async () => {
    const file = fresh('persisted');
    const store = storeDir();
    const first = await createHashCache({ storeDir: store }).get(file);
    expect(hex(first.sha256)).toBe(sha256('persisted'));
    expect(entries(store)).toHaveLength(1);
    expect(statSync(store).mode & 0o777).toBe(0o700);
    // Prove the second cache read the store: doctor the entry's digest (a
    // store only its owner can write is trusted) and see it come back.
    const entryFile = join(store, entries(store)[0]!);
    const entry = JSON.parse(readFileSync(entryFile, 'utf8'));
    entry.sha256 = 'ab'.repeat(32);
    writeFileSync(entryFile, JSON.stringify(entry));
    const second = await createHashCache({ storeDir: store }).get(file);
    expect(hex(second.sha256)).toBe('ab'.repeat(32));
    expect(hex(second.blake3)).toBe(hex(first.blake3));
  });

  it('misses when the file was rewritten, even with its size and mtime put back (ctime moved)', async () => {
    const file = fresh('version-1');
    const { mtime, atime } = statSync(file);
    const store = storeDir();
    await createHashCache({ storeDir: store }).get(file);
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(file, 'version-2');
    utimesSync(file, atime, mtime);
    const again = await createHashCache({ storeDir: store }).get(file);
    expect(hex(again.sha256)).toBe(sha256('version-2'));
  });

  it('ignores entries that are garbage, oversized or for another file, and hashes', async () => {
    const file = fresh('garbage around');
    const store = storeDir();
    await createHashCache({ storeDir: store }).get(file);
    const entryFile = join(store, entries(store)[0]!);
    const valid = readFileSync(entryFile, 'utf8');
    for (const bad of [
      '{not json',
      'x'.repeat(10_000),
      JSON.stringify({ ...JSON.parse(valid), key: 'other' }),
      JSON.stringify({ ...JSON.parse(valid), blake3: 'zz' }),
      JSON.stringify({ ...JSON.parse(valid), v: 2 }),
      'null',
    ]) {
      writeFileSync(entryFile, bad);
      const hashes = await createHashCache({ storeDir: store }).get(file);
      expect(hex(hashes.sha256)).toBe(sha256('garbage around'));
    }
  });

  it('is not used when its directory is group- or world-writable', async () => {
    const file = fresh('shared dir');
    const store = storeDir();
    mkdirSync(store, { mode: 0o700 });
    chmodSync(store, 0o777);
    const hashes = await createHashCache({ storeDir: store }).get(file);
    expect(hex(hashes.sha256)).toBe(sha256('shared dir'));
    expect(entries(store)).toHaveLength(0);
  });

  it('lives under the XDG cache directory, and can be moved or turned off', () => {
    expect(defaultHashStoreDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/handoff/file-hashes');
    expect(defaultHashStoreDir({ HANDOFF_HASH_CACHE_DIR: '/h', XDG_CACHE_HOME: '/c' })).toBe('/h');
    expect(defaultHashStoreDir({ HANDOFF_HASH_CACHE: 'off', XDG_CACHE_HOME: '/c' })).toBeNull();
    expect(defaultHashStoreDir({ XDG_CACHE_HOME: 'relative' })).toMatch(
      /\.cache\/handoff\/file-hashes$/,
    );
  });
});
