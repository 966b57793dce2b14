// Scenario 1: frame a Hello, cut it into pieces as a socket might deliver it,
// reassemble it and decode the same values back.
import {
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  FrameDecoder,
  Hello,
  PROTOCOL_VERSION,
  requestFrame,
} from '@handoff/protocol';
import { check } from './check.js';

const hello = Hello.create({
  clientMinProtocol: PROTOCOL_VERSION,
  clientMaxProtocol: PROTOCOL_VERSION,
  serviceName: 'consumer',
  wantedVersion: '1.2.3',
  clientCapabilities: CAP_HANDLE_PASSING,
  connectionId: 2n ** 64n - 1n,
  peerPid: process.pid,
});
const wire = encodeFramed(
  requestFrame({
    payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
    payload: Hello.encode(hello),
    requestId: 7n,
  }),
);
const decoder = new FrameDecoder();
const frames = [...decoder.push(wire.subarray(0, 3)), ...decoder.push(wire.subarray(3))];
decoder.end();
check(frames.length === 1, `one frame back, got ${frames.length}`);
const frame = frames[0]!;
check(frame.requestId === 7n, `request id 7, got ${frame.requestId}`);
const back = Hello.decode(frame.payload);
check(back.serviceName === 'consumer', `service name, got ${back.serviceName}`);
check(back.connectionId === 2n ** 64n - 1n, `u64 connection id, got ${back.connectionId}`);
console.log(`protocol: ok (${wire.length}-byte framed Hello)`);
