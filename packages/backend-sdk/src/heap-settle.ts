// One full garbage collection at a moment the daemon chooses: just before it
// first attaches to its broker. A fresh Node process reaches V8's first
// old-generation limit (about 10 MB, mostly the garbage of loading its
// modules) a few hundred ms after boot, and that first mark-compact pauses
// the event loop 5–15 ms on a small machine. In a rolling restart that is
// exactly when the replacement takes over its predecessor's clients, so the
// pause lands on their first requests (measured: lifecycle.daemon_restart
// in tools/bench). Collected before attaching, it lands in the boot, where
// nobody waits on it, and the next limit is set from the live heap.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface HeapSettleResult {
  /** How long the collection took. */
  ms: number;
}

let gcFunction: (() => void) | null | undefined;

/**
 * Runs one full, synchronous garbage collection. Uses `globalThis.gc` when
 * the process was started with `--expose-gc`; otherwise exposes it to a
 * fresh context only (this process's global object is left as it was).
 * Returns null when this V8 offers no way to collect on demand.
 */
export function collectGarbageNow(): HeapSettleResult | null {
  const gc = findGc();
  if (gc === null) return null;
  const t0 = performance.now();
  gc();
  return { ms: performance.now() - t0 };
}

function findGc(): (() => void) | null {
  if (gcFunction !== undefined) return gcFunction;
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') {
    gcFunction = own as () => void;
    return gcFunction;
  }
  try {
    // The flag applies to contexts created after it: the new one gets `gc`.
    setFlagsFromString('--expose-gc');
    const exposed: unknown = runInNewContext('typeof gc === "function" ? gc : null');
    gcFunction = typeof exposed === 'function' ? (exposed as () => void) : null;
  } catch {
    gcFunction = null;
  }
  return gcFunction;
}
