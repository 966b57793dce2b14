// The broker cases' wire helpers, shared by broker.bench.ts and the
// capacity and endpoint-cache cases: the Hello they time, the time from
// writing bytes on a connected socket to the first reply byte, and waiting
// for one whole framed response.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  Hello,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';

/** A framed Hello for `service`@1.0.0 without the handoff capability (the reconnect route). */
export const helloFrameFor = (service: string): Uint8Array =>
  encodeFramed(
    requestFrame({
      payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
      requestId: 1n,
      payload: Hello.encode({
        clientMinProtocol: 1,
        clientMaxProtocol: 1,
        serviceName: service,
        wantedVersion: '1.0.0',
      }),
    }),
  );

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
export function readFrame(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (tryDecodeFramed(buffered)) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve();
      }
    };
    const onClose = () => reject(new Error('closed before a response'));
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.resume();
  });
}
