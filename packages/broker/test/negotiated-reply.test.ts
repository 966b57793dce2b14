// The Negotiated the broker writes per routed Hello is put together from
// bytes cached per backend (src/handoff/negotiated-reply.ts). Held here to
// the encoder it replaces: the same bytes, so the same decoded reply, for
// any backend, ticket and correlation — and fresh bytes once a backend's
// version or endpoint changes.
import {
  CAP_HANDLE_PASSING,
  type Correlation,
  encodeFramed,
  HelloReply,
  Negotiated,
  PROTOCOL_VERSION,
  responseFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { negotiatedReply } from '../src/handoff/negotiated-reply.js';
import { type HandoffTicket, type NegotiatedTarget, negotiatedFrame } from '../src/handoff/wire.js';

/** The reply encoded field by field, as the broker did before the cache. */
function encodedOnce(ticket: HandoffTicket, target: NegotiatedTarget): Uint8Array {
  const value = Negotiated.create({
    negotiatedProtocol: PROTOCOL_VERSION,
    daemonVersion: target.definition.version,
    backendPipe: target.endpoint,
    serverCapabilities: ticket.canHandoff ? CAP_HANDLE_PASSING : 0n,
    handlePassedToken: ticket.token,
    connectionId: ticket.connectionId,
  });
  const payload = HelloReply.encode({ result: { case: 'negotiated', value } });
  return encodeFramed(responseFrame(ticket.correlation, { payload }));
}

const arbText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ minLength: 120, maxLength: 300 }),
  fc.constantFrom('', '1.0.0', '/run/user/1000/handoff/services/echo.sock', 'a\ud800b', 'é'),
);
const arbTarget = fc.record({
  definition: fc.record({ version: arbText }),
  endpoint: arbText,
});
const arbConnectionId = fc.oneof(
  fc.constantFrom(0n, 1n, 127n, 128n, 0xffff_ffffn, 0x1_0000_0000n, 0xffff_ffff_ffff_ffffn),
  fc.bigInt({ min: 0n, max: 0xffff_ffffn }),
  fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }),
);
const arbCorrelation: fc.Arbitrary<Correlation> = fc.record({
  payloadProtocol: fc.integer({ min: 0, max: 0xffff }),
  requestId: fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }),
  traceparent: fc.constantFrom('', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'),
  tracestate: fc.constantFrom('', 'vendor=value'),
});
const arbTicket: fc.Arbitrary<HandoffTicket> = fc
  .record({
    correlation: arbCorrelation,
    connectionId: arbConnectionId,
    canHandoff: fc.boolean(),
    token: fc.oneof(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ maxLength: 200 }),
    ),
  })
  .map((t) => ({
    ...t,
    trace: { traceparent: t.correlation.traceparent, tracestate: t.correlation.tracestate },
    // As the router makes them: a token only where a handoff may follow.
    token: t.canHandoff ? t.token : new Uint8Array(0),
  }));

/** What a client reads from `frame`: its reply, or the error it fails with (a lone surrogate in a string). */
function decodedReply(frame: Uint8Array): HelloReply | string {
  const decoded = tryDecodeFramed(frame);
  if (decoded === null) throw new Error('incomplete frame');
  try {
    return HelloReply.decode(decoded.frame.payload);
  } catch (error) {
    return String(error);
  }
}

describe('negotiatedFrame', () => {
  it('writes the bytes the encoder writes, for any backend and ticket', () => {
    fc.assert(
      fc.property(
        arbTarget,
        fc.array(arbTicket, { minLength: 1, maxLength: 4 }),
        (target, tickets) => {
          // Several clients of one backend: the later ones use its cached bytes.
          for (const ticket of tickets) {
            const fast = negotiatedFrame(ticket, target);
            const reference = encodedOnce(ticket, target);
            expect(Buffer.from(fast).equals(Buffer.from(reference))).toBe(true);
            expect(decodedReply(fast)).toEqual(decodedReply(reference));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps to any token, including ones the router never draws', () => {
    fc.assert(
      fc.property(
        arbTarget,
        fc.boolean(),
        fc.uint8Array({ maxLength: 300 }),
        arbConnectionId,
        (target, canHandoff, token, connectionId) => {
          const ticket: HandoffTicket = {
            correlation: { payloadProtocol: 0, requestId: 1n, traceparent: '', tracestate: '' },
            trace: { traceparent: '', tracestate: '' },
            connectionId,
            canHandoff,
            token,
          };
          expect(Buffer.from(negotiatedFrame(ticket, target))).toEqual(
            Buffer.from(encodedOnce(ticket, target)),
          );
        },
      ),
    );
  });

  it('follows a backend whose version or endpoint changed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(arbText, arbText, arbTicket), { minLength: 2, maxLength: 6 }),
        (changes) => {
          // One backend object throughout, changed in place between clients.
          const target = { definition: { version: '' }, endpoint: '' };
          for (const [version, endpoint, ticket] of changes) {
            target.definition.version = version;
            target.endpoint = endpoint;
            expect(Buffer.from(negotiatedFrame(ticket, target))).toEqual(
              Buffer.from(encodedOnce(ticket, target)),
            );
          }
        },
      ),
    );
  });

  it('leaves an id outside uint64 to the encoder, which refuses it', () => {
    const target = { definition: { version: '1.0.0' }, endpoint: '/tmp/x.sock' };
    for (const id of [-1n, 0x1_0000_0000_0000_0000n])
      expect(() => negotiatedReply(target, false, new Uint8Array(0), id)).toThrow(RangeError);
  });
});
