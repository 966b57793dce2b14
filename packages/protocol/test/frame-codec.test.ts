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
});
