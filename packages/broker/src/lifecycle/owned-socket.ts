// A daemon's endpoint bound by the broker before the daemon is spawned: a
// listening socket the broker keeps as a bare fd (never polled: the broker
// accepts nothing on it) and gives the child as fd 3. Clients that connect
// while the daemon warms up wait in the kernel's backlog. It owns the fd and
// the socket file it created; spawning and routing are the registry's.
import { lstatSync, renameSync, unlinkSync } from 'node:fs';
import { preparePrivateSocketPath } from '@handoff/backend-sdk';
import { closeFd, duplicateFd, FdServer } from '@handoff/fdpass';

/** The fd a daemon finds its listener on (the first after stdio, as in socket activation). */
export const DAEMON_LISTEN_FD = 3;

export interface OwnedDaemonSocket {
  readonly endpoint: string;
  /** The listening fd (close-on-exec in the broker); -1 once released. */
  readonly fd: number;
  /**
   * Closes the broker's copy; with `unlink`, also removes the socket file
   * if it is still the one bound here (same device and inode). Idempotent.
   */
  release(options: { unlink: boolean }): void;
}

/** listen(2) backlog: as many warm-up clients as Node's default lets wait. */
const BACKLOG = 511;

/**
 * Binds `endpoint` (private directory, mode 0600, a stale socket file
 * replaced, a live one refused with PrivateSocketError ADDRESS_IN_USE) and
 * listens on it.
 */
export async function bindDaemonSocket(endpoint: string): Promise<OwnedDaemonSocket> {
  await preparePrivateSocketPath(endpoint);
  const server = await FdServer.listen(endpoint, { kind: 'stream', mode: 0o600, backlog: BACKLOG });
  server.pause();
  let fd: number;
  try {
    fd = duplicateFd(server.fd);
  } catch (error) {
    server.close();
    throw error;
  }
  const { dev, ino } = lstatSync(endpoint);
  // FdServer would unlink the file when closed; the file must outlive it
  // (the daemon serves it). Moved aside while the server closes, so that
  // it finds no file of its own there, and moved back: nobody can be using
  // the path yet (no daemon serves it), so a connect in that instant sees
  // ENOENT exactly as it would have a moment before the bind.
  const aside = `${endpoint}.binding`;
  renameSync(endpoint, aside);
  server.close();
  renameSync(aside, endpoint);
  let current = fd;
  return {
    endpoint,
    get fd() {
      return current;
    },
    release({ unlink }) {
      if (current < 0) return;
      closeFd(current);
      current = -1;
      if (!unlink) return;
      try {
        const st = lstatSync(endpoint);
        if (st.dev === dev && st.ino === ino) unlinkSync(endpoint);
      } catch {
        // Already gone: nothing of ours to remove.
      }
    },
  };
}
