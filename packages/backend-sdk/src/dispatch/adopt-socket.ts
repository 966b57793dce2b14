// How a dispatcher worker turns a received connection fd into a net.Socket,
// the cheapest way Node allows: the listener's transport is known (TCP or
// Unix), so the libuv handle is made for it directly and the socket built
// on it, as net.Server does for its own connections — instead of
// `new Socket({ fd })`, which first asks the kernel what the fd is (fstat,
// getsockname, getsockopt, tcgetattr: ~5.5 µs of a worker's ~97 µs per
// connection, measured with perf). Where Node's handle constructors are
// not reachable without a warning, it falls back to `new Socket({ fd })`.
import { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

interface StreamHandle {
  open(fd: number): number;
  close(): void;
}
type HandleClass = new (kind: number) => StreamHandle;

interface Handles {
  TCP: HandleClass;
  Pipe: HandleClass;
  /** The SOCKET kind of each (0 in every Node so far, read from the binding). */
  tcpSocket: number;
  pipeSocket: number;
}

let handles: Handles | null | undefined;

/**
 * Node's TCP and Pipe handle classes, or null when they cannot be had
 * quietly: `process.binding` is deprecated (DEP0111) and warns (or throws)
 * under --pending-deprecation / --throw-deprecation, so then the public
 * `{ fd }` path is used.
 */
function nodeHandles(): Handles | null {
  if (handles !== undefined) return handles;
  handles = null;
  const pending =
    process.execArgv.some((a) => a === '--pending-deprecation') ||
    process.env.NODE_PENDING_DEPRECATION === '1' ||
    (process.env.NODE_OPTIONS ?? '').includes('--pending-deprecation');
  const binding = (process as unknown as { binding?: (name: string) => unknown }).binding;
  if (pending || typeof binding !== 'function') return handles;
  try {
    const tcp = binding('tcp_wrap') as { TCP?: unknown; constants?: { SOCKET?: unknown } };
    const pipe = binding('pipe_wrap') as { Pipe?: unknown; constants?: { SOCKET?: unknown } };
    if (
      typeof tcp.TCP === 'function' &&
      typeof pipe.Pipe === 'function' &&
      typeof tcp.constants?.SOCKET === 'number' &&
      typeof pipe.constants?.SOCKET === 'number'
    ) {
      handles = {
        TCP: tcp.TCP as HandleClass,
        Pipe: pipe.Pipe as HandleClass,
        tcpSocket: tcp.constants.SOCKET,
        pipeSocket: pipe.constants.SOCKET,
      };
    }
  } catch {
    // Not available in this runtime: the public path it is.
  }
  return handles;
}

/** Which way adoptSocket builds sockets in this process (for tests and diagnostics). */
export function adoptionPath(): 'handle' | 'fd' {
  return nodeHandles() === null ? 'fd' : 'handle';
}

/**
 * A readable, writable net.Socket over `fd`, a connected stream socket of
 * the given transport. Throws when the fd cannot be adopted; the caller
 * still owns (and must close) the fd then.
 */
export function adoptSocket(fd: number, transport: 'tcp' | 'unix', allowHalfOpen: boolean): Socket {
  const h = nodeHandles();
  if (h === null) return new Socket({ fd, readable: true, writable: true, allowHalfOpen });
  const handle = transport === 'tcp' ? new h.TCP(h.tcpSocket) : new h.Pipe(h.pipeSocket);
  const err = handle.open(fd);
  if (err !== 0) {
    // The handle does not own the fd when open failed; closing it leaves the fd alone.
    handle.close();
    const code = getSystemErrorName(err);
    // Shaped like the error `new Socket({ fd })` throws (code, errno, syscall).
    throw Object.assign(new Error(`open ${code}`), { code, errno: err, syscall: 'open' });
  }
  // `handle` is the option net.Server itself builds its connections with;
  // @types/node does not list it, hence the cast.
  return new Socket({ handle, readable: true, writable: true, allowHalfOpen } as never);
}
