// memfdCreate: an anonymous, memory-backed file whose fd can be passed to
// another process (state for a broker's fd store, say). Linux only; the
// syscall is native/memfd.cc's.
import { FdPassError, fromNative } from './errors.js';
import { loadNative } from './native-loader.js';

/** The kernel refuses names over 249 bytes (NAME_MAX minus "memfd:"). */
const MAX_NAME_BYTES = 249;

const encoder = new TextEncoder();

/**
 * memfd_create(name, MFD_CLOEXEC): a new fd, owned by the caller, for an
 * empty read-write file that lives in memory until its last fd closes. The
 * name only labels it in /proc/<pid>/fd. Throws FdPassError with the errno
 * name as `code` (ENOSYS off Linux, EMFILE when out of fds), TypeError for a
 * name with a NUL byte or over 249 bytes.
 */
export function memfdCreate(name: string): number {
  const usage = 'Usage: memfdCreate(name: string without NUL, at most 249 bytes)';
  if (typeof name !== 'string') throw new TypeError(usage);
  const bytes = encoder.encode(name);
  if (bytes.includes(0) || bytes.length > MAX_NAME_BYTES) throw new TypeError(usage);
  const native = loadNative();
  // A prebuilt addon older than this module has no memfdCreate.
  if (typeof native.memfdCreate !== 'function') {
    throw new FdPassError(
      'ERR_NATIVE',
      'this build of the fdpass addon has no memfdCreate: rebuild it',
    );
  }
  try {
    return native.memfdCreate(name);
  } catch (err) {
    throw fromNative(err, `memfd ${JSON.stringify(name)}`);
  }
}
