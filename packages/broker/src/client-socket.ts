// Writing to a broker client's socket without ever throwing at the router:
// write or close, close once flushed, wait for a flush. What to write is the
// router's, the admin session's and the handoff code's.
import type { FdSocket } from '@handoff/fdpass';

/** Writes, or closes the socket if the kernel refuses the bytes outright. */
export function safeWrite(socket: FdSocket, bytes: Uint8Array): void {
  if (socket.closed) return;
  try {
    socket.write(bytes);
  } catch {
    socket.close();
  }
}

/** Closes once everything written has reached the kernel (never waits past 5 s). */
export function closeWhenFlushed(socket: FdSocket): void {
  if (socket.closed) return;
  if (socket.writableLength === 0) {
    socket.close();
    return;
  }
  const timer = setTimeout(() => socket.close(), 5000);
  timer.unref();
  socket.once('drain', () => {
    clearTimeout(timer);
    socket.close();
  });
}

/** Resolves once what was written has reached the kernel, false if the socket closed first. */
export function flushed(socket: FdSocket): Promise<boolean> {
  if (socket.closed) return Promise.resolve(false);
  if (socket.writableLength === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onDrain = () => {
      socket.off('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      socket.off('drain', onDrain);
      resolve(false);
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}
