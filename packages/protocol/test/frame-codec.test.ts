// The hand-written envelope encoder must agree byte for byte with the
// protobufjs-generated encoder (the reference) on every frame.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFramedFrame } from '../src/frame-codec.js';
import {
  encodeFramed,
  Frame,
  type FrameKind,
  MAX_FRAME_BYTES,
  type PayloadEncoding,
} from '../src/index.js';
import { arbFrame } from './arbitraries.js';

const viaGenerated = (frame: Frame) => Frame.encode(frame);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('hand-written Frame encoder', () => {
  it('property: identical bytes to the generated encoder', () => {
    fc.assert(
      fc.property(arbFrame, (frame) => {
        expect(hex(encodeFramed(frame).subarray(5))).toBe(hex(viaGenerated(frame)));
      }),
      { numRuns: 3000 },
    );
  });

  it('matches on negative enum values (10-byte varints) and u64 edges', () => {
    const cases: Partial<Frame>[] = [
      { kind: -1 as FrameKind, payloadEncoding: -2147483648 as PayloadEncoding },
      { kind: 2147483647 as FrameKind },
      ...[
        1n,
        127n,
        128n,
        2n ** 32n - 1n,
        2n ** 32n,
        2n ** 35n - 1n,
        2n ** 35n,
        2n ** 63n,
        2n ** 64n - 1n,
      ].map((v) => ({ requestId: v, deadlineUnixMs: v })),
      { envelopeVersion: 0xffff_ffff, payloadProtocol: 0x8000_0000 },
      { payload: new Uint8Array(200).fill(7), traceparent: 'é😀€', tracestate: 'x'.repeat(300) },
    ];
    for (const frame of cases) {
      const full = Frame.create(frame);
      expect(
        hex(encodeFramed(full).subarray(5)),
        JSON.stringify(frame, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      ).toBe(hex(viaGenerated(full)));
    }
  });

  it('writes a lone surrogate as U+FFFD so the bytes stay valid UTF-8', () => {
    const wire = encodeFramed({ traceparent: 'a\ud800b' });
    expect(Frame.decode(wire.subarray(5)).traceparent).toBe('a\ufffdb');
  });

  it('accepts safe-integer numbers for 64-bit fields and rejects the rest', () => {
    const asNumber = { requestId: 5 } as unknown as Partial<Frame>;
    expect(Frame.decode(encodeFramed(asNumber).subarray(5)).requestId).toBe(5n);
    expect(() => encodeFramed({ requestId: -1n })).toThrow(RangeError);
    expect(() => encodeFramed({ requestId: 2n ** 64n })).toThrow(RangeError);
    expect(() => encodeFramed({ requestId: 2 ** 60 } as unknown as Partial<Frame>)).toThrow(
      RangeError,
    );
  });

  it('reports the body size instead of encoding past the cap', () => {
    expect(encodeFramedFrame({ payload: new Uint8Array(10) }, 5)).toBe(12);
    expect(encodeFramedFrame({}, MAX_FRAME_BYTES)).toBeInstanceOf(Uint8Array);
  });

  // Strings are sized as ASCII first: a non-ASCII one must re-run with UTF-8
  // sizes, in either field, and the cap must be judged on the UTF-8 size.
  it('re-sizes a non-ASCII string found while writing, in either string field', () => {
    const cases: Partial<Frame>[] = [
      { traceparent: 'ascii-then-é', tracestate: 'plain' },
      { traceparent: 'plain', tracestate: `${'k=v,'.repeat(40)}ü` },
      { traceparent: '😀', tracestate: '\u0080' },
    ];
    for (const frame of cases) {
      const full = Frame.create(frame);
      const wire = encodeFramed(full);
      expect(hex(wire.subarray(5))).toBe(hex(viaGenerated(full)));
      expect(Frame.decode(wire.subarray(5))).toStrictEqual(full);
    }
  });

  it('judges the cap on the UTF-8 size, not the UTF-16 length', () => {
    // 10 units, 30 bytes: fits a 15-byte cap as ASCII, not as UTF-8.
    const frame = { traceparent: '€'.repeat(10) };
    expect(encodeFramedFrame(frame, 15)).toBe(32);
    expect(encodeFramedFrame(frame, 32)).toBeInstanceOf(Uint8Array);
    // Over the cap even as ASCII: the size reported is still the exact one.
    expect(encodeFramedFrame({ traceparent: '€'.repeat(20) }, 5)).toBe(62);
  });
});

describe('hand-written Frame decoder', () => {
  const outcome = (decode: () => Frame): Frame | 'error' => {
    try {
      return decode();
    } catch {
      return 'error';
    }
  };

  it('property: decodes every frame exactly as the generated decoder', () => {
    fc.assert(
      fc.property(arbFrame, (frame) => {
        const body = Frame.encode(frame);
        expect(Frame.decode(body)).toStrictEqual(Frame.decodeGenerated(body));
        expect(Frame.decode(body)).toStrictEqual(frame);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: agrees with the generated decoder on random and mutated bytes', () => {
    const arbBytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc
        .tuple(
          arbFrame,
          fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }),
        )
        .map(([frame, edits]) => {
          const body = Frame.encode(frame).slice();
          for (const [at, value] of edits) if (body.length) body[at % body.length] = value;
          return body;
        }),
    );
    fc.assert(
      fc.property(arbBytes, (bytes) => {
        const ours = outcome(() => Frame.decode(bytes));
        const reference = outcome(() => Frame.decodeGenerated(bytes));
        expect(ours).toStrictEqual(reference);
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees on the edge cases: groups, wrong wire types, explicit zeros, long varints', () => {
    const cases = [
      [0x0b, 0x08, 0x01, 0x0c, 0x10, 0x01], // group with a varint inside, then kind
      [0x0b, 0x0c, 0x0b], // group, then an unterminated one
      [0x0b, 0x14], // end group for another field
      [0x0c], // end group at top level
      [0x12, 0x01, 0x02], // kind with the wrong wire type
      [0x08, 0x00, 0x28, 0x00], // explicit zeros
      [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // kind -1 as 10 bytes
      [0x28, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // 11-byte varint
      [0x00], // field 0
      [0x42, 0x03, 0xe2, 0x82, 0xac], // "€"
      [0x42, 0x02, 0xed, 0xa0], // a UTF-8 encoded surrogate: invalid
      new Array(101).fill(0x0b), // groups nested too deep
      // Closed groups at the edge of the limit (101 deep is still read),
      // empty or with a varint in the innermost (which counts one deeper).
      ...[100, 101, 102].map((n) => [...new Array(n).fill(0x0b), ...new Array(n).fill(0x0c)]),
      ...[99, 100, 101].map((n) => [
        ...new Array(n).fill(0x0b),
        0x10,
        0x01,
        ...new Array(n).fill(0x0c),
      ]),
    ];
    for (const bytes of cases) {
      const input = new Uint8Array(bytes);
      expect(
        outcome(() => Frame.decode(input)),
        hex(input),
      ).toStrictEqual(outcome(() => Frame.decodeGenerated(input)));
    }
  });
});
