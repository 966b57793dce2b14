import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  Hello,
  utf8ByteLength,
  validateHello,
  validateServiceName,
  validateVersion,
} from '../src/index.js';

const good = Hello.create({
  clientMinProtocol: 1,
  clientMaxProtocol: 1,
  serviceName: 'demo-kv',
  wantedVersion: '1.0.0',
});

const verdict = (patch: Partial<Hello>, ctx = {}) => validateHello({ ...good, ...patch }, ctx);

describe('validateHello', () => {
  it('accepts a well-formed Hello', () => {
    expect(validateHello(good)).toEqual({ ok: true });
    expect(
      verdict({ clientMinProtocol: 0, clientMaxProtocol: 7, wantedVersion: '10.20.30-rc.1' }),
    ).toEqual({ ok: true });
  });

  it('refuses protocol ranges that exclude 1 with VERSION_UNSUPPORTED', () => {
    for (const [min, max] of [
      [2, 3],
      [0, 0],
      [1, 0],
      [2, 1],
    ] as const) {
      expect(verdict({ clientMinProtocol: min, clientMaxProtocol: max })).toMatchObject({
        ok: false,
        code: ErrorCode.VERSION_UNSUPPORTED,
      });
    }
  });

  it('applies the service-name pattern: lowercase only, 1..64', () => {
    for (const name of ['', 'Demo', 'demo_kv', 'a'.repeat(65), 'é', 'demo kv']) {
      expect(validateServiceName(name), name).toMatchObject({
        ok: false,
        code: ErrorCode.PEER_REJECTED,
        field: 'serviceName',
      });
      expect(verdict({ serviceName: name }).ok).toBe(false);
    }
    expect(validateServiceName('a'.repeat(64))).toEqual({ ok: true });
    expect(validateServiceName('0-9')).toEqual({ ok: true });
  });

  it('requires a MAJOR.MINOR.PATCH wanted version of at most 64 bytes', () => {
    for (const v of [
      '',
      '1',
      '1.2',
      '1.2.3.4',
      'v1.2.3',
      '1.2.3-',
      '1.2.3-RC1',
      '1.2.3+build',
      '１.2.3',
    ]) {
      expect(validateVersion(v), v).toMatchObject({
        ok: false,
        code: ErrorCode.PEER_REJECTED,
        field: 'wantedVersion',
      });
    }
    expect(validateVersion(`1.2.3-${'a'.repeat(58)}`)).toEqual({ ok: true }); // 64 bytes
    expect(validateVersion(`1.2.3-${'a'.repeat(59)}`)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('64 bytes'),
    });
  });

  it('caps client_version at 128 bytes and the lib fields at 64, in UTF-8 bytes', () => {
    expect(verdict({ clientVersion: 'x'.repeat(128) }).ok).toBe(true);
    expect(verdict({ clientVersion: 'x'.repeat(129) })).toMatchObject({
      ok: false,
      field: 'clientVersion',
    });
    expect(verdict({ clientLibName: 'é'.repeat(33) })).toMatchObject({
      ok: false,
      field: 'clientLibName',
    }); // 66 bytes
    expect(verdict({ clientLibVersion: 'x'.repeat(65) })).toMatchObject({
      ok: false,
      field: 'clientLibVersion',
    });
  });

  it('checks a non-zero claimed peer pid against the kernel peer pid', () => {
    expect(verdict({ peerPid: 10 }, { peerPid: 10 }).ok).toBe(true);
    expect(verdict({ peerPid: 0 }, { peerPid: 10 }).ok).toBe(true);
    expect(verdict({ peerPid: 11 }, { peerPid: 10 })).toMatchObject({
      ok: false,
      code: ErrorCode.PEER_REJECTED,
      field: 'peerPid',
    });
  });

  it('counts UTF-8 bytes like an encoder', () => {
    for (const s of ['', 'abc', 'é', '€', '😀', 'a\ud800b', '\udc00']) {
      expect(utf8ByteLength(s), JSON.stringify(s)).toBe(Buffer.byteLength(s, 'utf8'));
    }
  });
});
