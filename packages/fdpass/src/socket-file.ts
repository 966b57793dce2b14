// The socket file a listener created, remembered by (device, inode) so that
// closing the listener removes that file and never one that replaced it
// (another process may have bound the same path since).
import { lstatSync, unlinkSync } from 'node:fs';
import { fromNative } from './errors.js';
import type { NativeBinding } from './native-loader.js';

export interface SocketFileIdentity {
  dev: number;
  ino: number;
}

/** The identity of the file at `path` just after bind(); null for an abstract name or none. */
export function socketFileIdentity(path: string): SocketFileIdentity | null {
  if (path.startsWith('\0')) return null;
  try {
    const st = lstatSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Unlinks `path` only if it is still the file we created. */
export function unlinkIfOurs(path: string, identity: SocketFileIdentity): void {
  try {
    const st = lstatSync(path);
    if (st.dev === identity.dev && st.ino === identity.ino) unlinkSync(path);
  } catch {
    // Already gone (or replaced and not ours): nothing to clean up.
  }
}

/** Checks listen()'s backlog and mode; `where` names the caller (e.g. 'FdServer.listen'). */
export function checkListenOptions(where: string, backlog: number, mode: number | undefined): void {
  if (!Number.isInteger(backlog) || backlog < 0) {
    throw new TypeError(`Usage: ${where}(path, { backlog: non-negative integer })`);
  }
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) {
    throw new TypeError(`Usage: ${where}(path, { mode: 0..0o7777 })`);
  }
}

/**
 * Binds and listens on `path`, then hands the fd and the file's identity to
 * `make`. If `make` throws, the fd is closed and the file it created
 * removed before the error goes on: a failed listener leaves nothing. So
 * `make` may throw only while it has not taken the fd: once an owner holds
 * it (a watcher closes its fd), a later failure is that owner's to clean up.
 */
export function listenOnPath<T>(
  native: NativeBinding,
  path: string,
  type: number,
  backlog: number,
  mode: number | undefined,
  make: (fd: number, identity: SocketFileIdentity | null) => T,
): T {
  let fd: number;
  try {
    fd = native.listen(path, type, backlog, mode ?? -1);
  } catch (err) {
    throw fromNative(err, path);
  }
  const identity = socketFileIdentity(path);
  try {
    return make(fd, identity);
  } catch (err) {
    native.closeFd(fd);
    if (identity) unlinkIfOurs(path, identity);
    throw err;
  }
}
