// The framed Hello connectService sends: encoded once per (service, wanted
// version, client version) and reused, since those bytes never change for
// them within a process (the pid, the library version and request id 1 are
// fixed). A Hello with trace context is encoded per call: it is per request.
import {
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  Hello,
  PROTOCOL_VERSION,
  requestFrame,
} from '@handoff/protocol';
import { brokerPackageVersion } from '../package-version.js';

/** Frames kept; beyond this the oldest goes (a program rarely asks for more services). */
const MAX_KEPT = 64;

const kept = new Map<string, Uint8Array>();

/** The last frame handed out, checked before the map: a program usually asks for one service. */
let last: {
  serviceName: string;
  version: string;
  clientVersion: string;
  frame: Uint8Array;
} | null = null;

export interface HelloFields {
  version: string;
  clientVersion?: string | undefined;
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

/** The Hello frame for `serviceName`; callers must not modify it (it is shared). */
export function helloFrame(serviceName: string, fields: HelloFields): Uint8Array {
  const traced = (fields.traceparent ?? '') !== '' || (fields.tracestate ?? '') !== '';
  if (traced) return encodeHello(serviceName, fields);
  const clientVersion = fields.clientVersion ?? '';
  if (
    last !== null &&
    last.serviceName === serviceName &&
    last.version === fields.version &&
    last.clientVersion === clientVersion
  )
    return last.frame;
  const key = `${serviceName}\0${fields.version}\0${clientVersion}`;
  let frame = kept.get(key);
  if (frame === undefined) {
    frame = encodeHello(serviceName, fields);
    if (kept.size >= MAX_KEPT) kept.delete(kept.keys().next().value as string);
    kept.set(key, frame);
  }
  last = { serviceName, version: fields.version, clientVersion, frame };
  return frame;
}

function encodeHello(serviceName: string, fields: HelloFields): Uint8Array {
  const hello = Hello.encode({
    clientMinProtocol: PROTOCOL_VERSION,
    clientMaxProtocol: PROTOCOL_VERSION,
    serviceName,
    wantedVersion: fields.version,
    clientVersion: fields.clientVersion ?? '',
    clientCapabilities: CAP_HANDLE_PASSING,
    peerPid: process.pid,
    clientLibName: '@handoff/broker',
    clientLibVersion: brokerPackageVersion() ?? '',
  });
  return encodeFramed(
    requestFrame({
      payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
      payload: hello,
      requestId: 1n,
      traceparent: fields.traceparent ?? '',
      tracestate: fields.tracestate ?? '',
    }),
  );
}
