// Kernel-attested identity of the process at the other end of a connected
// AF_UNIX socket. Reads only; never takes ownership of the fd.
import type { Socket } from 'node:net';
import { fromNative } from './errors.js';
import { FdSocket } from './fd-socket.js';
import { loadNative } from './native-loader.js';
import { fdOf } from './node-interop.js';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * SO_PEERCRED (Linux) / getpeereid + LOCAL_PEERPID (macOS): the pid, uid and
 * gid recorded by the kernel when the connection was made.
 */
export function peerCredentials(target: number | FdSocket | Socket): PeerCredentials {
  let fd: number;
  if (typeof target === 'number') fd = target;
  else if (target instanceof FdSocket) fd = target.fd;
  else fd = fdOf(target);
  if (!Number.isInteger(fd) || fd < 0) {
    throw new TypeError('Usage: peerCredentials(fd | FdSocket | net.Socket) on an open socket');
  }
  try {
    return loadNative().peerCredentials(fd);
  } catch (err) {
    throw fromNative(err, `fd ${fd}`);
  }
}
