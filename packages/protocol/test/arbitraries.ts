// fast-check generators shared by the property tests.
import fc from 'fast-check';
import type { Frame, Hello } from '../src/index.js';

export const arbU64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const arbU32 = fc.nat({ max: 0xffff_ffff });
const arbBytes = (maxLength = 64) => fc.uint8Array({ maxLength });
const arbText = (maxLength = 32) => fc.string({ maxLength, unit: 'grapheme' });

export const arbFrame: fc.Arbitrary<Frame> = fc
  .record({
    envelopeVersion: arbU32,
    kind: fc.integer({ min: 0, max: 3 }),
    payloadProtocol: fc.nat({ max: 0xffff }),
    payload: arbBytes(),
    requestId: arbU64,
    payloadEncoding: fc.integer({ min: 0, max: 3 }),
    deadlineUnixMs: arbU64,
    traceparent: arbText(),
    tracestate: arbText(),
  })
  .map((r) => ({ ...r })); // fc.record objects have no prototype; ours do

export const arbHello: fc.Arbitrary<Hello> = fc
  .record({
    clientMinProtocol: arbU32,
    clientMaxProtocol: arbU32,
    serviceName: arbText(),
    wantedVersion: arbText(),
    clientVersion: arbText(),
    clientCapabilities: arbU64,
    authToken: arbBytes(),
    requestId: arbText(),
    connectionId: arbU64,
    peerPid: arbU32,
    clientLibName: arbText(),
    clientLibVersion: arbText(),
    peerAttestationNonce: arbBytes(),
    capabilityToken: arbBytes(),
    clientKeepaliveSecs: arbU64,
  })
  .map((r) => ({ ...r }));
