// Shared test harness: a daemon identity computed once per test file; temp
// dirs and fd counting come from @handoff/testkit and are re-exported so
// tests import one place.
import { createHashCache, currentDaemonProcess, type DaemonIdentity } from '../src/index.js';

export { fdText, isOpenFd, memfdWith, openFds, tempDir } from '@handoff/testkit';

export const hashCache = createHashCache();

export function identityFor(endpoint: string, idleTimeoutSecs?: number): Promise<DaemonIdentity> {
  return currentDaemonProcess(endpoint, {
    hashCache,
    entryScript: null,
    ...(idleTimeoutSecs === undefined ? {} : { idleTimeoutSecs }),
  });
}

export const text = (s: string) => new TextEncoder().encode(s);
export const str = (b: Uint8Array) => new TextDecoder().decode(b);
