// Closing fds the broker owns and is done with, on paths where a failed
// close changes nothing: on Linux the fd is released either way, and the
// caller is already handling the error that made it let go. One native
// call for the lot (fdpass closeFds: each distinct fd once, all attempted).
import { closeFds } from '@handoff/fdpass';

export function closeQuietly(fds: readonly number[]): void {
  if (fds.length === 0) return;
  try {
    closeFds(fds);
  } catch {
    // EBADF or EIO: nothing left to release.
  }
}
