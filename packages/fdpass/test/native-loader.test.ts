import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FdPassError } from '../src/index.js';
import { candidatePaths, loadFromPaths, loadNative, packageRoot } from '../src/native-loader.js';

describe('native loader', () => {
  it('finds the addon relative to the package root, Release before Debug', () => {
    const root = packageRoot();
    expect(existsSync(join(root, 'package.json'))).toBe(true);
    expect(candidatePaths(root)).toEqual([
      join(root, 'build', 'Release', 'fdpass.node'),
      join(root, 'build', 'Debug', 'fdpass.node'),
    ]);
    expect(typeof loadNative().socketPair).toBe('function');
  });

  it('throws ERR_NATIVE_LOAD listing every path it tried', () => {
    const tried = ['/nonexistent/Release/fdpass.node', '/nonexistent/Debug/fdpass.node'];
    let error: unknown;
    try {
      loadFromPaths(tried);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FdPassError);
    expect((error as FdPassError).code).toBe('ERR_NATIVE_LOAD');
    for (const path of tried) expect((error as Error).message).toContain(path);
  });

  it('rejects bad arguments with a usage TypeError instead of crashing', () => {
    const native = loadNative();
    expect(() => (native.send as (...a: unknown[]) => number)(1)).toThrow(/^Usage: send/);
    expect(() => (native.recv as (...a: unknown[]) => unknown)(-1, 1, 1, 1, true)).toThrow(
      TypeError,
    );
    expect(() => native.watch(-5, () => {}, false)).toThrow(/Usage/);
    // A handle argument must be a watcher's: any other value, External or not, is refused.
    const watchEvents = native.watchEvents as (...a: unknown[]) => number;
    expect(() => watchEvents({}, 1)).toThrow(/^Usage: watchEvents/);
    expect(() => watchEvents(1, 1)).toThrow(/^Usage: watchEvents/);
    expect(() => (native.watchClose as (x: unknown) => void)(null)).toThrow(/^Usage: watchClose/);
    expect(() => (native.decodeSockaddr as (x: unknown) => unknown)('str')).toThrow(/Usage/);
    const peer = native.peerCredentials as (...a: unknown[]) => void;
    expect(() => peer(0)).toThrow(/^Usage: peerCredentials/);
    expect(() => peer(0, new Int32Array(3))).toThrow(/^Usage: peerCredentials/);
    expect(() => peer(0, new Float64Array(2))).toThrow(/^Usage: peerCredentials/);
    expect(() => peer(-1, new Float64Array(3))).toThrow(/^Usage: peerCredentials/);
  });
});
