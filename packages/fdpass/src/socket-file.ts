// The socket file a listener created, remembered by (device, inode) so that
// closing the listener removes that file and never one that replaced it
// (another process may have bound the same path since).
import { lstatSync, unlinkSync } from 'node:fs';

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
