// Bridges between raw fds and Node's own objects: borrow the fd of a
// net.Socket/net.Server, adopt a received stream socket as net.Socket or a
// listening socket as net.Server, and the two fd primitives (close, dup).
// A stream socket is adopted on a TCP or Pipe handle made for its family,
// as net.Server builds its own connections, not through `{ fd }` (which
// asks the kernel again what the fd is): the one home of that trick, used
// by handoff adoption and the dispatcher's workers alike.
import { createServer, type Server, Socket } from 'node:net';
import { errnoError, FdPassError, fromNative } from './errors.js';
import { closeFdList, packFds } from './fd-list.js';
import { loadNative } from './native-loader.js';

interface HandleCarrier {
  _handle?: { fd?: unknown } | null;
}

/**
 * The fd behind a net.Socket or net.Server, or null while it has none (not
 * connected or listening yet, closed). The one place Node's handle is read;
 * package-internal (fdOf is the public form).
 */
export function fdOrNull(target: Socket | Server): number | null {
  const fd = (target as unknown as HandleCarrier)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/**
 * The fd behind a net.Socket or net.Server. Borrowed: Node still owns it and
 * closes it with the object; duplicate it (duplicateFd) to keep a copy.
 */
export function fdOf(target: Socket | Server): number {
  const fd = fdOrNull(target);
  if (fd === null) {
    throw new FdPassError(
      'ERR_INVALID_FD',
      'fdOf: the object has no open fd (not connected/listening, already closed, or not on Unix)',
    );
  }
  return fd;
}

export interface SocketFromFdOptions {
  allowHalfOpen?: boolean;
  /**
   * What the fd is, when the caller knows for sure (it accepted it from a
   * listener of that transport): skips the kernel check of the fd's family
   * and type. Unset, the fd is checked, and a non-stream fd refused.
   */
  transport?: 'tcp' | 'unix';
  /**
   * The connection already has TCP_NODELAY (a TCP socket accepted from a
   * listener that had it inherits it on Linux): the socket records that, so
   * a later `setNoDelay(true)`, which node:http and most servers call for
   * every connection, makes no system call. This sets nothing itself: on a
   * socket without the option, `setNoDelay(true)` would then leave Nagle on.
   */
  noDelay?: boolean;
}

function checkStreamSocket(fd: number, where: string): 'tcp' | 'unix' {
  const native = loadNative();
  let family: number;
  let type: number;
  try {
    family = native.socketFamily(fd);
    type = native.socketType(fd);
  } catch (err) {
    throw fromNative(err, `${where} fd ${fd}`);
  }
  const { AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM } = native.constants;
  if (type !== SOCK_STREAM || (family !== AF_UNIX && family !== AF_INET && family !== AF_INET6)) {
    throw new FdPassError(
      'ERR_INVALID_FD',
      `${where}: fd ${fd} is not a TCP or Unix stream socket (family ${family}, type ${type})`,
    );
  }
  return family === AF_UNIX ? 'unix' : 'tcp';
}

/**
 * Adopts a connected TCP or Unix stream socket (e.g. one received over an
 * FdSocket) as a net.Socket. On success the net.Socket owns the fd and is
 * the only thing that may close it; on a thrown error the caller still owns
 * it.
 */
export function socketFromFd(fd: number, opts: SocketFromFdOptions = {}): Socket {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('Usage: socketFromFd(fd, opts?)');
  const transport = opts.transport ?? checkStreamSocket(fd, 'socketFromFd');
  const allowHalfOpen = opts.allowHalfOpen ?? false;
  // Node's Socket constructor records `noDelay` without touching the fd.
  const noDelay = opts.noDelay ?? false;
  const h = nodeHandles();
  if (h === null) {
    return new Socket(socketOptions(undefined, fd, allowHalfOpen, noDelay));
  }
  const handle = transport === 'tcp' ? new h.TCP(h.tcpSocket) : new h.Pipe(h.pipeSocket);
  const err = handle.open(fd);
  if (err !== 0) {
    // The handle does not own the fd when open failed; closing it leaves the fd alone.
    handle.close();
    throw errnoError(-err, 'open', `socketFromFd fd ${fd}`);
  }
  // `handle` is the option net.Server itself builds its connections with.
  return new Socket(socketOptions(handle, undefined, allowHalfOpen, noDelay));
}

/**
 * The options of every socket socketFromFd makes, with each option Node's
 * Socket, Duplex, Readable and Writable constructors read (Node 20)
 * present, undefined where unset: those constructors only read values, so
 * an undefined option is an unset one. Why all of them:
 * - Socket copies its options (`{ ...options }`), then the stream
 *   constructors look up two dozen of them. On an object that inherits from
 *   Object.prototype, each missing one took V8's slow path on every
 *   adoption: about 52,000 of 121,000 instructions per adopted socket
 *   (callgrind: socketpair, socketFromFd, destroy, close).
 * - An object without a prototype has no chain to search, but V8 keeps it
 *   as a dictionary, and copying a dictionary is V8's slow clone: 13,200
 *   instructions of a daemon's ~102,000 per handed-off connection.
 * - An ordinary object that has every key is copied on V8's fast path and
 *   answers every lookup itself. One shape for both branches (a handle or
 *   an fd) keeps the copy's cache monomorphic.
 * @types/node lists neither `handle` nor `noDelay`, hence the cast.
 */
function socketOptions(
  handle: StreamHandle | undefined,
  fd: number | undefined,
  allowHalfOpen: boolean,
  noDelay: boolean,
): never {
  return {
    handle,
    fd,
    readable: true,
    writable: true,
    allowHalfOpen,
    noDelay,
    keepAlive: undefined,
    keepAliveInitialDelay: undefined,
    onread: undefined,
    pauseOnCreate: undefined,
    manualStart: undefined,
    signal: undefined,
    objectMode: undefined,
    readableObjectMode: undefined,
    writableObjectMode: undefined,
    highWaterMark: undefined,
    readableHighWaterMark: undefined,
    writableHighWaterMark: undefined,
    encoding: undefined,
    defaultEncoding: undefined,
    decodeStrings: undefined,
    emitClose: undefined,
    autoDestroy: undefined,
    read: undefined,
    write: undefined,
    writev: undefined,
    final: undefined,
    destroy: undefined,
    construct: undefined,
  } as never;
}

interface StreamHandle {
  open(fd: number): number;
  close(): void;
}
type HandleClass = new (kind: number) => StreamHandle;

interface NodeHandles {
  TCP: HandleClass;
  Pipe: HandleClass;
  /** The SOCKET kind of each (0 in every Node so far, read from the binding). */
  tcpSocket: number;
  pipeSocket: number;
}

let handles: NodeHandles | null | undefined;

/**
 * Node's TCP and Pipe handle classes, or null when they cannot be had
 * quietly: `process.binding` is deprecated (DEP0111) and warns (or throws)
 * under --pending-deprecation / --throw-deprecation, so then the public
 * `{ fd }` path is used. Read once per process.
 */
function nodeHandles(): NodeHandles | null {
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

/**
 * How socketFromFd builds sockets in this process: 'handle' (a TCP or Pipe
 * handle made directly, as net.Server does) or 'fd' (`new Socket({ fd })`,
 * under --pending-deprecation or where Node's handles are out of reach).
 */
export function socketAdoptionPath(): 'handle' | 'fd' {
  return nodeHandles() === null ? 'fd' : 'handle';
}

/**
 * Adopts a listening TCP or Unix stream socket as a net.Server, resolved
 * once Node listens on it. On success the server owns the fd; if the fd is
 * rejected before Node takes it (not a listening stream socket) the caller
 * still owns it.
 */
export function serverFromFd(fd: number): Promise<Server> {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('Usage: serverFromFd(fd)');
  try {
    checkStreamSocket(fd, 'serverFromFd');
    if (loadNative().isListening(fd) !== 1) {
      throw new FdPassError('ERR_INVALID_FD', `serverFromFd: fd ${fd} is not listening`);
    }
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise<Server>((resolve, reject) => {
    const server = createServer();
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ fd }, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/**
 * Writes `data` to a connected stream socket now, in this call, past Node's
 * write queue; returns how many bytes the kernel took (0 to data.length).
 *
 * Why: net.Socket sends nothing until its 'connect' callback, a turn of the
 * event loop after connect() returned, even where the kernel connected the
 * socket inside the call, as it does a Unix socket. Until then the request
 * waits behind whatever the caller's code does next, while the server,
 * woken by the connect, may already be waiting for it. Written here, the
 * first bytes are queued at the peer before the caller's code goes on.
 *
 * 0 means nothing was taken and is not an error: the socket is not
 * connected yet, its buffer is full, it is closed or failed, or Node already
 * holds writes for it (which must go first). Write what was not taken with
 * `socket.write(data.subarray(n))`: it goes after these bytes, and a fault
 * is reported there, the way Node reports it. No SIGPIPE is raised. The
 * bytes taken here are not counted in `socket.bytesWritten`.
 */
export function writeNow(socket: Socket, data: Uint8Array): number {
  if (!(socket instanceof Socket) || !(data instanceof Uint8Array))
    throw new TypeError('Usage: writeNow(socket: net.Socket, data: Uint8Array)');
  if (data.length === 0 || socket.destroyed || socket.writableEnded || socket.writableLength > 0)
    return 0;
  const fd = fdOrNull(socket);
  if (fd === null) return 0;
  // Node's sockets are non-blocking: a full buffer is EAGAIN, not a wait.
  const sent = loadNative().send(fd, data, 0, null, 0);
  return sent > 0 ? sent : 0;
}

/** close(2). Throws FdPassError (e.g. EBADF) with errno and syscall. */
export function closeFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('Usage: closeFd(fd)');
  const rc = loadNative().closeFd(fd);
  if (rc < 0) throw errnoError(-rc, 'close', `fd ${fd}`);
}

/**
 * close(2) for many fds in one native call: each distinct fd is closed once
 * (a number listed twice is not closed twice). Every fd is attempted; then
 * the first failure, if any, is thrown as FdPassError (e.g. EBADF).
 */
export function closeFds(fds: readonly number[] | Int32Array): void {
  if (packFds(fds) === null) {
    throw new TypeError('Usage: closeFds(fds: number[] | Int32Array of non-negative fds)');
  }
  const rc = closeFdList(loadNative(), fds);
  if (rc < 0) throw errnoError(-rc, 'close', `closing ${fds.length} fds`);
}

/** fcntl(F_DUPFD_CLOEXEC): a new fd for the same open file, owned by the caller. */
export function duplicateFd(fd: number): number {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError('Usage: duplicateFd(fd)');
  try {
    return loadNative().dupFd(fd);
  } catch (err) {
    throw fromNative(err, `fd ${fd}`);
  }
}
