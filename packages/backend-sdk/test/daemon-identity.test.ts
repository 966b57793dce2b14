import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createHashCache, currentDaemonProcess } from '../src/index.js';
import { processStartTimeMs } from '../src/proc-info.js';

describe('currentDaemonProcess', () => {
  it('describes this process truthfully', { timeout: 60_000 }, async () => {
    const cache = createHashCache();
    const entry = new URL(import.meta.url).pathname;
    const identity = await currentDaemonProcess('/tmp/x.sock', {
      idleTimeoutSecs: 30,
      hashCache: cache,
      entryScript: entry,
    });
    const p = identity.process;
    expect(p.pid).toBe(process.pid);
    expect(p.exePath).toBe(realpathSync(process.execPath));
    expect(p.exeHashAlgorithm).toBe('blake3');
    expect(p.exeHash).toHaveLength(32);
    expect(Buffer.from(identity.legacyExeSha256).toString('hex')).toBe(
      createHash('sha256').update(readFileSync(p.exePath)).digest('hex'),
    );
    expect(p.ipcEndpoint).toEqual({ namespaceId: '', path: '/tmp/x.sock' });
    expect(p.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    expect(p.startedAtUnixMs).toBe(BigInt(Math.round(await processStartTimeMs(process.pid))));
    expect(p.idleTimeoutSecs).toBe(30);
    expect(p.entryScriptPath).toBe(realpathSync(entry));
    expect(p.entryScriptHash).toHaveLength(32);
    // The second call is served from the hash cache.
    const t0 = performance.now();
    await currentDaemonProcess('/tmp/x.sock', { hashCache: cache, entryScript: null });
    expect(performance.now() - t0).toBeLessThan(200);
    expect(cache.size).toBe(2);
  });
});
