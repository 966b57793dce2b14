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

/** Where the addon writes pid, uid and gid: read into a new object at once. */
const scratch = new Float64Array(3);

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
    loadNative().peerCredentials(fd, scratch);
  } catch (err) {
    throw fromNative(err, `fd ${fd}`);
  }
  return { pid: scratch[0] as number, uid: scratch[1] as number, gid: scratch[2] as number };
}
