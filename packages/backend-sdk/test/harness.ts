// Shared test harness: a private temp directory per test file, a daemon
// identity computed once, and counters for leak checks.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHashCache, currentDaemonProcess, type DaemonIdentity } from '../src/index.js';

export const hashCache = createHashCache();

export function tempDir(prefix: string): {
  dir: string;
  path: (name: string) => string;
  remove: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), `handoff-${prefix}-`));
  return {
    dir,
    path: (name) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function identityFor(endpoint: string, idleTimeoutSecs?: number): Promise<DaemonIdentity> {
  return currentDaemonProcess(endpoint, {
    hashCache,
    entryScript: null,
    ...(idleTimeoutSecs === undefined ? {} : { idleTimeoutSecs }),
  });
}

export const openFds = () => readdirSync('/proc/self/fd').length;
export const text = (s: string) => new TextEncoder().encode(s);
export const str = (b: Uint8Array) => new TextDecoder().decode(b);
