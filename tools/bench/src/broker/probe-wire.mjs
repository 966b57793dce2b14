// The wire the standalone probes speak (hello-probe, handoff-probe,
// offer-throughput-probe: plain `node` scripts over the built packages,
// which cannot import the suites' TypeScript frames.ts): a framed Hello,
// the echo daemon's request, connecting as connectService does, waiting for
// whole framed replies, and finding the daemons a broker process started.
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import {
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  Hello,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';

/**
 * A connect to a Unix path as connectService makes it: options without a
 * prototype (see @handoff/broker's client/unix-connect.ts; with a plain
 * `{ path }` Node spends about twice the instructions per connect). Every
 * baseline and floor client connects this way, so a ratio against them is
 * the cost of the route alone, not of how the socket was made.
 */
export function connectPath(path) {
  return connect({ __proto__: null, path });
}

/** A framed Hello for `service`@1.0.0; `handoff` adds the handle-passing capability. */
export function helloBytes(service, { handoff = false } = {}) {
  return encodeFramed(
    requestFrame({
      payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
      requestId: 1n,
      payload: Hello.encode({
        clientMinProtocol: 1,
        clientMaxProtocol: 1,
        serviceName: service,
        wantedVersion: '1.0.0',
        ...(handoff ? { clientCapabilities: CAP_HANDLE_PASSING } : {}),
      }),
    }),
  );
}

/** The echo daemon's request (payload protocol 0xF001, 32 bytes). */
export const echoRequest = encodeFramed(
  requestFrame({ payloadProtocol: 0xf001, requestId: 1n, payload: new Uint8Array(32) }),
);

/** Resolves once `frames` whole frames have arrived on `socket`; rejects if it closes first. */
export function readFrames(socket, frames) {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    let seen = 0;
    const onData = (chunk) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (let got = tryDecodeFramed(buffered); got; got = tryDecodeFramed(buffered)) {
        buffered = buffered.subarray(got.consumed);
        if (++seen === frames) {
          socket.off('data', onData);
          socket.off('close', onClose);
          resolve();
          return;
        }
      }
    };
    const onClose = () => reject(new Error('closed before a response'));
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.resume();
  });
}

/**
 * Direct children of `pid` (a broker's daemons). Every thread's list: a
 * child belongs to the thread that spawned it, and the broker spawns from
 * a libuv pool thread (fdpass spawnProcessAsync), not the main one.
 */
export function childrenOf(pid) {
  let tasks;
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children = [];
  for (const task of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' '))
        if (child.trim() !== '') children.push(Number(child));
    } catch {
      // the thread is gone
    }
  }
  return children;
}

/** The one daemon `brokerPid` started; throws unless there is exactly one. */
export function onlyDaemonOf(brokerPid) {
  const children = childrenOf(brokerPid);
  if (children.length !== 1)
    throw new Error(`expected one daemon under broker ${brokerPid}, found [${children}]`);
  return children[0];
}
