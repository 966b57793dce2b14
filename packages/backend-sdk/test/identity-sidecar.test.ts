import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DaemonProcess } from '@handoff/protocol';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  formatIdentitySidecar,
  IdentitySidecarError,
  parseIdentitySidecar,
  readIdentitySidecar,
  removeIdentitySidecar,
  writeIdentitySidecar,
} from '../src/identity-sidecar.js';
import type { DaemonIdentity } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'handoff-sidecar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const identity: DaemonIdentity = {
  process: DaemonProcess.create({
    pid: 4242,
    exePath: '/usr/bin/node',
    ipcEndpoint: { namespaceId: 'ns', path: '/run/user/1000/handoff/demo.sock' },
    startedAtUnixMs: 1_763_700_000_123n,
    bootId: '6d1f2b9e-33a8-4c1e-9d27-0c1d5d0e8a11',
    idleTimeoutSecs: 300,
    exeHashAlgorithm: 'blake3',
    exeHash: Uint8Array.from({ length: 32 }, (_, i) => i),
  }),
  legacyExeSha256: Uint8Array.from({ length: 32 }, (_, i) => 255 - i),
};

describe('identity sidecar', () => {
  it('writes keys in the reference order, pretty, u64 as a number', () => {
    const text = formatIdentitySidecar(identity);
    const keys = [...text.matchAll(/^ {2}"([a-z0-9_]+)":/gm)].map((m) => m[1]);
    expect(keys).toEqual([
      'pid',
      'exe_path',
      'exe_hash_algorithm',
      'exe_hash',
      'legacy_exe_sha256',
      'boot_id',
      'ipc_endpoint',
      'started_at_unix_ms',
      'idle_timeout_secs',
    ]);
    expect(text).toContain('"started_at_unix_ms": 1763700000123,');
    expect(JSON.parse(text).ipc_endpoint).toEqual({
      namespace_id: 'ns',
      path: '/run/user/1000/handoff/demo.sock',
    });
  });

  it('round-trips through a file written atomically with mode 0600', async () => {
    const path = join(dir, 'demo.identity.json');
    await writeIdentitySidecar(path, identity);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(await readIdentitySidecar(path)).toStrictEqual(identity);
    await writeIdentitySidecar(path, {
      ...identity,
      process: { ...identity.process, idleTimeoutSecs: undefined },
    });
    expect(JSON.parse(readFileSync(path, 'utf8')).idle_timeout_secs).toBeNull();
    await removeIdentitySidecar(path);
    await removeIdentitySidecar(path);
  });

  it('reads a missing file as no daemon', async () => {
    expect(await readIdentitySidecar(join(dir, 'absent.json'))).toBeNull();
  });

  it('defaults a missing legacy_exe_sha256 to zeros', () => {
    const doc = JSON.parse(formatIdentitySidecar(identity));
    delete doc.legacy_exe_sha256;
    expect(parseIdentitySidecar(JSON.stringify(doc)).legacyExeSha256).toStrictEqual(
      new Uint8Array(32),
    );
  });

  it('names the field at fault in a malformed sidecar', () => {
    const base = JSON.parse(formatIdentitySidecar(identity));
    const cases: [string, (d: Record<string, unknown>) => void][] = [
      ['pid', (d) => (d.pid = -1)],
      ['exe_path', (d) => (d.exe_path = 7)],
      ['exe_hash', (d) => (d.exe_hash = [1, 2])],
      ['legacy_exe_sha256', (d) => (d.legacy_exe_sha256 = new Array(32).fill(256))],
      ['boot_id', (d) => delete d.boot_id],
      ['ipc_endpoint', (d) => (d.ipc_endpoint = 'x')],
      ['ipc_endpoint.path', (d) => (d.ipc_endpoint = { namespace_id: '' })],
      ['started_at_unix_ms', (d) => (d.started_at_unix_ms = 1.5)],
      ['idle_timeout_secs', (d) => (d.idle_timeout_secs = 'forever')],
    ];
    for (const [field, mutate] of cases) {
      const doc = structuredClone(base);
      mutate(doc);
      expect(() => parseIdentitySidecar(JSON.stringify(doc)), field).toThrow(
        expect.objectContaining({ field }),
      );
    }
    expect(() => parseIdentitySidecar('{nope')).toThrow(IdentitySidecarError);
    expect(() => parseIdentitySidecar('[]')).toThrow(IdentitySidecarError);
  });

  it('refuses an oversize file without reading it all', async () => {
    const path = join(dir, 'huge.json');
    writeFileSync(path, ' '.repeat(70 * 1024));
    await expect(readIdentitySidecar(path)).rejects.toThrow(IdentitySidecarError);
  });

  it('property: mutated sidecar text parses or fails with IdentitySidecarError only', () => {
    const text = formatIdentitySidecar(identity);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 127 })), { maxLength: 6 }),
        (edits) => {
          const chars = [...text];
          for (const [at, code] of edits) chars[at % chars.length] = String.fromCharCode(code);
          try {
            parseIdentitySidecar(chars.join(''));
          } catch (error) {
            expect(error).toBeInstanceOf(IdentitySidecarError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
