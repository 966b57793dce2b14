// The hand-written Hello and HelloReply decoders must decode every input,
// valid or not, exactly as the protobufjs-generated decoders (the
// reference) do: same message, or an error where it errs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Hello, HelloReply, Negotiated, Refused } from '../src/index.js';
import { arbHello, arbHelloReply, arbNegotiated } from './arbitraries.js';
import { outcome, randomAndMutated } from './differential.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** `n` groups of field 1, each inside the last, all closed, `inner` in the innermost. */
const nestedGroups = (n: number, inner: number[] = []) => [
  ...new Array(n).fill(0x0b),
  ...inner,
  ...new Array(n).fill(0x0c),
];

const varint = (n: number) => (n < 0x80 ? [n] : [(n & 0x7f) | 0x80, n >> 7]);

/** Two encodings back to back: protobuf merges them (last scalar wins, lists add up). */
const concatenated = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
};

describe('hand-written Hello decoder', () => {
  it('property: decodes every Hello exactly as the generated decoder', () => {
    fc.assert(
      fc.property(arbHello, (hello) => {
        const body = Hello.encode(hello);
        expect(Hello.decode(body)).toStrictEqual(Hello.decodeGenerated(body));
        expect(Hello.decode(body)).toStrictEqual(hello);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: agrees with the generated decoder on random and mutated bytes', () => {
    fc.assert(
      fc.property(randomAndMutated(Hello, arbHello), (bytes) => {
        expect(outcome(() => Hello.decode(bytes))).toStrictEqual(
          outcome(() => Hello.decodeGenerated(bytes)),
        );
      }),
      { numRuns: 5000 },
    );
  });

  it('property: two Hellos back to back decode as one, last value winning', () => {
    fc.assert(
      fc.property(arbHello, arbHello, (a, b) => {
        const bytes = concatenated(Hello.encode(a), Hello.encode(b));
        expect(Hello.decode(bytes)).toStrictEqual(Hello.decodeGenerated(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('agrees on the edge cases: wrong wire types, explicit zeros, long varints, groups', () => {
    const cases = [
      [0x1a, 0x00], // empty service name
      [0x18, 0x05], // service name as a varint: skipped
      [0x0a, 0x01, 0x61], // client_min_protocol as bytes: skipped
      [0x08, 0x00, 0x30, 0x00, 0x3a, 0x00], // explicit zeros and empty bytes
      [0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // peer_pid, 10 bytes
      [0x30, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // 11 bytes
      [0x1a, 0x02, 0xed, 0xa0], // a UTF-8 encoded surrogate: invalid
      [0x1a, 0x05, 0x61], // length past the end
      [0x0b, 0x08, 0x01, 0x0c, 0x10, 0x02], // a group, then client_max_protocol
      [0xa3, 0x01, 0xa4, 0x01], // field 20 (reserved) as a group: skipped
      [0x00], // field 0
      [0x0c], // end group at top level
      new Array(101).fill(0x0b), // groups nested too deep
      // Closed groups at the edge of the limit, empty or holding a varint.
      ...[100, 101, 102].map((n) => nestedGroups(n)),
      ...[99, 100, 101].map((n) => nestedGroups(n, [0x10, 0x01])),
    ];
    for (const bytes of cases) {
      const input = new Uint8Array(bytes);
      expect(
        outcome(() => Hello.decode(input)),
        hex(input),
      ).toStrictEqual(outcome(() => Hello.decodeGenerated(input)));
    }
  });

  it('returns bytes fields as views into the input, not copies', () => {
    const body = Buffer.from(Hello.encode({ serviceName: 'a', authToken: new Uint8Array([7, 8]) }));
    const hello = Hello.decode(body);
    expect(hello.authToken.buffer).toBe(body.buffer);
    expect([...hello.authToken]).toEqual([7, 8]);
  });

  it('throws FramingError DECODE, naming the type, for bad bytes', () => {
    expect(() => Hello.decode(new Uint8Array([0x1a, 0x05]))).toThrow(
      expect.objectContaining({ name: 'FramingError', code: 'DECODE', typeName: Hello.typeName }),
    );
  });
});

describe('hand-written HelloReply decoder', () => {
  it('property: decodes every reply exactly as the generated decoder', () => {
    fc.assert(
      fc.property(arbHelloReply, (reply) => {
        const body = HelloReply.encode(reply);
        expect(HelloReply.decode(body)).toStrictEqual(HelloReply.decodeGenerated(body));
        expect(HelloReply.decode(body)).toStrictEqual(reply);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: agrees with the generated decoder on random and mutated bytes', () => {
    fc.assert(
      fc.property(randomAndMutated(HelloReply, arbHelloReply), (bytes) => {
        expect(outcome(() => HelloReply.decode(bytes))).toStrictEqual(
          outcome(() => HelloReply.decodeGenerated(bytes)),
        );
      }),
      { numRuns: 5000 },
    );
  });

  it('property: replies back to back merge as the generated decoder merges them', () => {
    // Negotiated twice merges field by field (warnings add up); a Refused
    // anywhere sends the whole reply to the generated decoder.
    fc.assert(
      fc.property(arbHelloReply, arbHelloReply, (a, b) => {
        const bytes = concatenated(HelloReply.encode(a), HelloReply.encode(b));
        expect(HelloReply.decode(bytes)).toStrictEqual(HelloReply.decodeGenerated(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it('property: a Negotiated inside mutated bytes decodes as the generated one', () => {
    // Mutations aimed at the nested message: its own bytes, re-wrapped in
    // field 1 with a correct length, so the outer message stays whole.
    fc.assert(
      fc.property(
        arbNegotiated,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 }),
        (negotiated, edits) => {
          const inner = Negotiated.encode(negotiated).slice();
          for (const [at, value] of edits) if (inner.length) inner[at % inner.length] = value;
          const bytes = concatenated(new Uint8Array([0x0a, inner.length]), inner);
          if (inner.length > 127) return; // one-byte length only
          expect(outcome(() => HelloReply.decode(bytes))).toStrictEqual(
            outcome(() => HelloReply.decodeGenerated(bytes)),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('agrees on the edge cases: empty, refusals, groups inside the Negotiated', () => {
    const refused = Refused.encode({ reason: 'no', details: { a: 'b' } });
    const cases = [
      [], // no result at all
      [0x0a, 0x00], // an empty Negotiated
      [0x08, 0x01], // field 1 as a varint: skipped, no result
      [0x12, refused.length, ...refused], // a Refused: the generated decoder's
      [0x0a, 0x02, 0x08, 0x01, 0x12, refused.length, ...refused], // Negotiated, then Refused
      [0x12, refused.length, ...refused, 0x0a, 0x02, 0x08, 0x01], // Refused, then Negotiated
      [0x0a, 0x02, 0x08, 0x01, 0x0a, 0x02, 0x08, 0x00], // merged: explicit zero wins
      [0x0a, 0x03, 0x22, 0x01, 0x61, 0x0a, 0x03, 0x22, 0x01, 0x62], // warnings add up
      [0x0a, 0x04, 0x0b, 0x0c, 0x08, 0x01], // a group inside, then negotiated_protocol
      [0x0a, 0x03, 0x1a, 0x05, 0x61], // inner length past the inner end
      [0x0a, 0x05, 0x08, 0x01], // outer length past the end
      [0x0a, 0x01, 0x0c], // end group inside the Negotiated
      // Closed groups nested 99, 100 and 101 deep inside the Negotiated: the
      // nested message's own level counts against the limit.
      ...[99, 100, 101].map((n) => [0x0a, ...varint(2 * n), ...nestedGroups(n)]),
      ...[98, 99, 100].map((n) => [0x0a, ...varint(2 * n + 2), ...nestedGroups(n, [0x10, 0x01])]),
    ];
    for (const bytes of cases) {
      const input = new Uint8Array(bytes);
      expect(
        outcome(() => HelloReply.decode(input)),
        hex(input),
      ).toStrictEqual(outcome(() => HelloReply.decodeGenerated(input)));
    }
  });

  it('decodes a Refused through the generated decoder, map and all', () => {
    const value = Refused.create({ reason: 'busy', code: 3, details: { retry: 'later' } });
    const body = HelloReply.encode({ result: { case: 'refused', value } });
    expect(HelloReply.decode(body)).toStrictEqual({ result: { case: 'refused', value } });
  });
});
