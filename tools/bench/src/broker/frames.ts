// The broker cases' wire helpers, shared by broker.bench.ts and the
// capacity and endpoint-cache cases: the Hello they time, the time from
// writing bytes on a connected socket to the first reply byte, and waiting
// for one whole framed response. The bytes, the connect as connectService
// makes it (connectPath) and the frame reading are
// probe-wire.mjs's, which the standalone probes share.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { helloBytes, readFrames } from './probe-wire.mjs';

export { connectPath } from './probe-wire.mjs';

/** A framed Hello for `service`@1.0.0 without the handoff capability (the reconnect route). */
export const helloFrameFor = (service: string): Uint8Array => helloBytes(service);

/**
 * ms from writing `bytes` on a fresh, connected socket to `path` to the
 * first reply byte. A server that closes without a byte fails the call
 * rather than leaving the bench waiting for ever.
 */
export async function firstReply(path: string, bytes: Uint8Array): Promise<number> {
  const socket = connect({ path });
  try {
    await once(socket, 'connect');
    const answered = firstBytes(socket, path);
    const t0 = performance.now();
    socket.write(bytes);
    await answered;
    return performance.now() - t0;
  } finally {
    socket.destroy();
  }
}

/** Settles on the socket's first bytes: rejected if it ends or fails before any. */
function firstBytes(socket: Socket, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error: Error | null) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', settle);
      if (error) reject(error);
      else resolve();
    };
    const onData = () => settle(null);
    const onEnd = () => settle(new Error(`${path} closed the connection without a reply`));
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', settle);
  });
}

/** Resolves once one whole frame has arrived on `socket`. */
export const readFrame = (socket: Socket): Promise<void> => readFrames(socket, 1);
