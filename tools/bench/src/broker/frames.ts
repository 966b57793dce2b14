// The broker cases' wire helpers, shared by broker.bench.ts and the
// capacity and endpoint-cache cases: the Hello they time, the time from
// writing bytes on a connected socket to the first reply byte, and waiting
// for one whole framed response. The bytes and the frame reading are
// probe-wire.mjs's, which the standalone probes share.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { helloBytes, readFrames } from './probe-wire.mjs';

/** A framed Hello for `service`@1.0.0 without the handoff capability (the reconnect route). */
export const helloFrameFor = (service: string): Uint8Array => helloBytes(service);

/** ms from writing `bytes` on a fresh, connected socket to `path` to the first reply byte. */
export async function firstReply(path: string, bytes: Uint8Array): Promise<number> {
  const socket = connect({ path });
  await once(socket, 'connect');
  const t0 = performance.now();
  socket.write(bytes);
  await once(socket, 'data');
  const elapsed = performance.now() - t0;
  socket.destroy();
  return elapsed;
}

/** Resolves once one whole frame has arrived on `socket`. */
export const readFrame = (socket: Socket): Promise<void> => readFrames(socket, 1);
