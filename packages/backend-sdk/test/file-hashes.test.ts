import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createHashCache } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'handoff-hash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('file hashes', () => {
  it('match the published BLAKE3 and SHA-256 test vectors', async () => {
    const empty = join(dir, 'empty');
    const abc = join(dir, 'abc');
    writeFileSync(empty, '');
    writeFileSync(abc, 'abc');
    const cache = createHashCache();
    expect(hex((await cache.get(empty)).blake3)).toBe(
      'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
    );
    expect(hex((await cache.get(abc)).blake3)).toBe(
      '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
    );
    expect(hex((await cache.get(abc)).sha256)).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('hashes a multi-chunk file like a one-shot digest', async () => {
    const big = join(dir, 'big');
    const data = Buffer.alloc(3 * 1024 * 1024 + 7);
    for (let i = 0; i < data.length; i += 997) data[i] = i & 0xff;
    writeFileSync(big, data);
    const { sha256 } = await createHashCache().get(big);
    expect(hex(sha256)).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('caches by (device, inode, size, mtime) and rehashes a changed file', async () => {
    const file = join(dir, 'changing');
    writeFileSync(file, 'one');
    const cache = createHashCache();
    const first = await cache.get(file);
    expect(await cache.get(file)).toBe(first);
    expect(cache.size).toBe(1);
    writeFileSync(file, 'two');
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const second = await cache.get(file);
    expect(hex(second.sha256)).toBe(createHash('sha256').update('two').digest('hex'));
    expect(cache.size).toBe(2);
  });

  it('does not cache a failure', async () => {
    const cache = createHashCache();
    await expect(cache.get(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(cache.size).toBe(0);
  });
});
