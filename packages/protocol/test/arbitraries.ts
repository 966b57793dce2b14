// fast-check generators shared by the property tests.
import fc from 'fast-check';
import type {
  Frame,
  HandoffAck,
  HandoffOffer,
  Hello,
  HelloReply,
  Negotiated,
  Refused,
} from '../src/index.js';

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

export const arbNegotiated: fc.Arbitrary<Negotiated> = fc
  .record({
    negotiatedProtocol: arbU32,
    daemonVersion: arbText(),
    backendPipe: arbText(108),
    warnings: fc.array(arbText(), { maxLength: 3 }),
    serverCapabilities: arbU64,
    keepaliveIntervalSecs: arbU64,
    handlePassedToken: arbBytes(32),
    connectionId: arbU64,
  })
  .map((r) => ({ ...r }));

export const arbRefused: fc.Arbitrary<Refused> = fc
  .record({
    reason: arbText(),
    daemonMinProtocol: arbU32,
    daemonMaxProtocol: arbU32,
    code: fc.integer({ min: 0, max: 20 }),
    details: fc.dictionary(arbText(8), arbText(8), { maxKeys: 3 }).map((d) => ({ ...d })),
    retryAfterMs: arbU64,
  })
  .map((r) => ({ ...r }));

export const arbHelloReply: fc.Arbitrary<HelloReply> = fc.oneof(
  arbNegotiated.map((value): HelloReply => ({ result: { case: 'negotiated', value } })),
  arbRefused.map((value): HelloReply => ({ result: { case: 'refused', value } })),
  fc.constant<HelloReply>({ result: { case: undefined } }),
);

export const arbHandoffOffer: fc.Arbitrary<HandoffOffer> = fc.record({
  handleValue: arbU64,
  token: arbBytes(40),
  serviceName: arbText(20),
  correlationId: arbU64,
  bufferedClientBytes: arbBytes(40),
  clientPrelude: arbBytes(40),
});

export const arbHandoffAck: fc.Arbitrary<HandoffAck> = fc.record({
  token: arbBytes(40),
  accepted: fc.boolean(),
  errorDetail: arbText(20),
  correlationId: arbU64,
  preludeWritten: fc.boolean(),
});
