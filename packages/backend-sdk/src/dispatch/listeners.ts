// Opens the dispatcher's listening sockets as FdAcceptors: the master
// accepts raw fds and can pause accepting (the kernel backlog absorbs a
// burst) without ever wrapping a connection in a net.Socket of its own —
// so no Node object in the master can close an fd it has handed on.
//   TCP: net.Server binds (host resolution, dual stack, port 0), then we
//        take a close-on-exec duplicate of its fd and close the server
//        before the event loop polls it, so only our acceptor ever accepts.
//   Unix: bound by fdpass directly; closing a net.Server would unlink the
//        path out from under the duplicate. Or, when a broker bound the
//        daemon's endpoint and passed it in (HANDOFF_LISTEN_FD), that one.
// A failure part-way closes every listener already opened.
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { closeFd, duplicateFd, FdAcceptor, fdOf } from '@handoff/fdpass';
import { listenFdFor, takeInheritedListener } from '../server/inherited-listener.js';
import { DispatchError } from './errors.js';
import type { DispatchEndpoint } from './wire.js';

export type DispatchListen =
  | {
      port: number;
      /** Default: every address (dual stack where available), like net.Server. */
      host?: string;
      backlog?: number;
      ipv6Only?: boolean;
      /**
       * TCP_NODELAY on the listening socket (default false, as net.Server):
       * every connection inherits it, so Nagle is off from the first byte
       * and a worker's `socket.setNoDelay(true)` — node:http's own default —
       * costs no system call per connection.
       */
      noDelay?: boolean;
    }
  | {
      path: string;
      /** chmod of the socket file, e.g. 0o600 (default: left to the umask). */
      mode?: number;
      backlog?: number;
    };

export interface OpenedListeners {
  acceptors: FdAcceptor[];
  endpoints: DispatchEndpoint[];
}

/** The default listen(2) backlog: what absorbs a burst while accepting is paused. */
const DEFAULT_BACKLOG = 511;

export async function openListeners(specs: readonly DispatchListen[]): Promise<OpenedListeners> {
  const acceptors: FdAcceptor[] = [];
  const endpoints: DispatchEndpoint[] = [];
  for (const [index, spec] of specs.entries()) {
    try {
      if ('path' in spec) {
        // A broker may have bound this path for us (HANDOFF_LISTEN_FD): serve
        // that listener, as serveDaemon does, rather than fail on a live socket.
        const inherited = listenFdFor(spec.path, undefined);
        const acceptor =
          inherited === null
            ? await FdAcceptor.listen(spec.path, {
                backlog: spec.backlog ?? DEFAULT_BACKLOG,
                ...(spec.mode === undefined ? {} : { mode: spec.mode }),
              })
            : adoptInherited(takeInheritedListener(inherited, spec.path));
        acceptor.pause();
        acceptors.push(acceptor);
        endpoints.push({ index, transport: 'unix', family: 'unix', path: spec.path });
      } else {
        const bound = await bindTcp(spec);
        let acceptor: FdAcceptor;
        try {
          acceptor = FdAcceptor.fromFd(bound.fd);
        } catch (err) {
          closeFd(bound.fd);
          throw err;
        }
        acceptor.pause();
        acceptors.push(acceptor);
        endpoints.push({
          index,
          transport: 'tcp',
          family: bound.family,
          address: bound.address,
          port: bound.port,
          noDelay: spec.noDelay === true,
        });
      }
    } catch (err) {
      for (const a of acceptors) a.close();
      throw DispatchError.from('LISTEN_FAILED', `cannot listen on ${describeListen(spec)}`, err);
    }
  }
  return { acceptors, endpoints };
}

/** An acceptor over a checked inherited listener; the fd is closed if that fails. */
function adoptInherited(fd: number): FdAcceptor {
  try {
    return FdAcceptor.fromFd(fd);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

/**
 * TCP_NODELAY on a listening net.Server, through its own TCP handle (the
 * setsockopt Node makes for a connection, made once here for all of them).
 * Throws, with the errno, when the handle refuses or has no such method.
 */
function setListenerNoDelay(server: Server): void {
  const handle = (server as unknown as { _handle?: { setNoDelay?: (on: boolean) => number } })
    ._handle;
  if (typeof handle?.setNoDelay !== 'function') {
    throw new DispatchError('LISTEN_FAILED', 'this Node cannot set TCP_NODELAY on a listener');
  }
  const rc = handle.setNoDelay(true);
  if (rc !== 0) {
    const code = getSystemErrorName(rc);
    throw new DispatchError('LISTEN_FAILED', `cannot set TCP_NODELAY: ${code} (setsockopt)`, {
      errnoCode: code,
      errno: rc,
      syscall: 'setsockopt',
    });
  }
}

export function describeListen(spec: DispatchListen): string {
  if ('path' in spec) return spec.path;
  return `${spec.host ?? '*'}:${spec.port}`;
}

async function bindTcp(
  spec: Extract<DispatchListen, { port: number }>,
): Promise<{ fd: number; address: string; port: number; family: 'inet' | 'inet6' }> {
  const server = createServer();
  const listening = once(server, 'listening');
  server.listen({
    port: spec.port,
    ...(spec.host === undefined ? {} : { host: spec.host }),
    backlog: spec.backlog ?? DEFAULT_BACKLOG,
    ipv6Only: spec.ipv6Only ?? false,
    // Never share a handle through node:cluster, should the master itself run in a cluster worker.
    exclusive: true,
  });
  await listening; // rejects with the listen error (EADDRINUSE, EACCES, …)
  // Still inside the 'listening' tick: libuv has not polled the socket, so
  // Node cannot have accepted anything. Close its handle now; the
  // duplicate keeps the socket listening for our acceptor alone.
  const addr = server.address() as AddressInfo | null;
  let fd: number;
  try {
    if (spec.noDelay === true) setListenerNoDelay(server);
    fd = duplicateFd(fdOf(server));
  } finally {
    server.close();
  }
  if (addr === null || typeof addr !== 'object') {
    closeFd(fd);
    throw new DispatchError('LISTEN_FAILED', 'the TCP listener has no address');
  }
  return {
    fd,
    address: addr.address,
    port: addr.port,
    family: addr.family === 'IPv6' ? 'inet6' : 'inet',
  };
}
