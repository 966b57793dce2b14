// fd lists on their way into the addon. The addon takes (Int32Array, count):
// reading a JS array element by element through N-API costs more than the
// syscall it feeds, while copying it here runs as optimized JS. Callers pass
// either number[] or Int32Array; nothing here owns an fd.
import type { NativeBinding } from './native-loader.js';

export type FdList = readonly number[] | Int32Array;

/** Reused for every call on this realm's thread; valid until the next pack. */
let scratch = new Int32Array(256);

/**
 * Validates `fds` (non-negative int32 values) and returns an Int32Array
 * whose first fds.length entries are those fds: the list itself when it is
 * already an Int32Array, else the shared scratch array. null when invalid.
 */
export function packFds(fds: unknown): Int32Array | null {
  if (fds instanceof Int32Array) {
    for (let i = 0; i < fds.length; i++) if ((fds[i] as number) < 0) return null;
    return fds;
  }
  if (!Array.isArray(fds)) return null;
  const n = fds.length;
  if (n > scratch.length) scratch = new Int32Array(Math.max(n, scratch.length * 2));
  const out = scratch;
  for (let i = 0; i < n; i++) {
    const fd: unknown = fds[i];
    if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd >= 2 ** 31) return null;
    out[i] = fd;
  }
  return out;
}

/** Closes each distinct fd of a valid list once, in one native call; 0 or -errno. */
export function closeFdList(native: NativeBinding, fds: FdList | null | undefined): number {
  if (!fds || fds.length === 0) return 0;
  const packed = packFds(fds);
  if (packed === null) throw new TypeError('Usage: fds must be non-negative integers');
  return native.closeFds(packed, fds.length);
}
