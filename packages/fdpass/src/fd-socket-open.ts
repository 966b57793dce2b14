// Getting the fd an FdSocket is made from: socketpair, connect (a full
// backlog retried with back-off) and the checks on an fd before adopting it.
// Each hands its fd to the caller; wrapping it, and closing it if that
// fails, is fd-socket.ts's job.
import { FdPassError, fromNative } from './errors.js';
import type { SocketKind } from './fd-socket-options.js';
import type { NativeBinding } from './native-loader.js';

/** A connected pair of fds of `type`. */
export function socketPairFds(native: NativeBinding, type: number): [number, number] {
  try {
    return native.socketPair(type);
  } catch (err) {
    throw fromNative(err);
  }
}

/**
 * Connects a non-blocking socket of `type` to `path`. A full backlog (EAGAIN)
 * is retried with a short backoff until it succeeds or `signal` aborts;
 * other failures (ENOENT, ECONNREFUSED, …) reject at once. `inProgress`
 * means the connection completes later (the socket turns writable).
 */
export async function connectFd(
  native: NativeBinding,
  path: string,
  type: number,
  signal: AbortSignal | undefined,
): Promise<[fd: number, inProgress: boolean]> {
  let backoffMs = 1;
  for (;;) {
    signal?.throwIfAborted();
    try {
      return native.connect(path, type);
    } catch (err) {
      const e = fromNative(err, path);
      if ((e as FdPassError).code === 'EAGAIN') {
        await abortableDelay(backoffMs, signal);
        backoffMs = Math.min(backoffMs * 2, 50);
        continue;
      }
      throw e;
    }
  }
}

/**
 * The kind of a connected AF_UNIX socket fd about to be adopted (from
 * SO_TYPE), made non-blocking. Throws ERR_INVALID_FD for any other fd; the
 * caller still owns fd either way.
 */
export function adoptableKind(native: NativeBinding, fd: number): SocketKind {
  let family: number;
  let type: number;
  try {
    family = native.socketFamily(fd);
    type = native.socketType(fd);
  } catch (err) {
    throw fromNative(err, `fd ${fd}`);
  }
  const { AF_UNIX, SOCK_STREAM, SOCK_SEQPACKET } = native.constants;
  if (family !== AF_UNIX || (type !== SOCK_STREAM && type !== SOCK_SEQPACKET)) {
    throw new FdPassError(
      'ERR_INVALID_FD',
      `fd ${fd} is not an AF_UNIX stream or seqpacket socket (family ${family}, type ${type})`,
    );
  }
  try {
    native.setNonBlocking(fd);
  } catch (err) {
    throw fromNative(err, `fd ${fd}`);
  }
  return type === SOCK_STREAM ? 'stream' : 'seqpacket';
}

function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
