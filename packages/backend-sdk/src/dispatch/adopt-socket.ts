// How a dispatcher worker turns a received connection fd into a net.Socket,
// the cheapest way Node allows: the listener's transport is known (TCP or
// Unix), so fdpass's socketFromFd makes the libuv handle for it directly
// and builds the socket on it, as net.Server does for its own connections —
// instead of `new Socket({ fd })`, which first asks the kernel what the fd
// is (fstat, getsockname, getsockopt, tcgetattr: ~5.5 µs of a worker's
// ~97 µs per connection, measured with perf). The handle trick itself lives
// in @handoff/fdpass (node-interop.ts), shared with handoff adoption.
import type { Socket } from 'node:net';
import { socketAdoptionPath, socketFromFd } from '@handoff/fdpass';

/** Which way adoptSocket builds sockets in this process (for tests and diagnostics). */
export function adoptionPath(): 'handle' | 'fd' {
  return socketAdoptionPath();
}

/**
 * A readable, writable net.Socket over `fd`, a connected stream socket of
 * the given transport. `noDelay`: the fd has TCP_NODELAY already (inherited
 * from its listener), which the socket records instead of setting it again.
 * Throws when the fd cannot be adopted (with the errno's code and syscall
 * 'open'); the caller still owns (and must close) the fd then.
 */
export function adoptSocket(
  fd: number,
  transport: 'tcp' | 'unix',
  allowHalfOpen: boolean,
  noDelay = false,
): Socket {
  return socketFromFd(fd, { transport, allowHalfOpen, noDelay });
}
