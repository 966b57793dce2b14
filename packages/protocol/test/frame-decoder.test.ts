import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeFramed,
  type Frame,
  FrameDecoder,
  FramingError,
  MAX_FRAME_BYTES,
  requestFrame,
} from '../src/index.js';
import { arbFrame } from './arbitraries.js';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function cut(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

function decodeAll(chunks: Uint8Array[], decoder = new FrameDecoder()): Frame[] {
  const frames: Frame[] = [];
  for (const chunk of chunks) frames.push(...decoder.push(chunk));
  decoder.end();
  return frames;
}

describe('FrameDecoder', () => {
  it('property: any chunking of a stream of frames yields the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(arbFrame, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (frames, offsets) => {
          const stream = concat(frames.map((f) => encodeFramed(f)));
          expect(decodeAll(cut(stream, offsets))).toStrictEqual(frames);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('decodes byte-by-byte delivery', () => {
    const frames = [
      requestFrame({ payloadProtocol: 0xf000, payload: new Uint8Array(300).fill(1) }),
      requestFrame({ payloadProtocol: 0xf000 }),
    ];
    const stream = concat(frames.map((f) => encodeFramed(f)));
    const bytes = Array.from(stream, (b) => new Uint8Array([b]));
    expect(decodeAll(bytes)).toStrictEqual(frames);
  });

  it('reassembles a 16 MiB frame from 64 KiB chunks into one body buffer', () => {
    const payload = new Uint8Array(MAX_FRAME_BYTES - 64);
    for (let i = 0; i < payload.length; i += 4096) payload[i] = i & 0xff;
    const wire = encodeFramed({ payload, requestId: 1n });
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    for (let at = 0; at < wire.length; at += 64 * 1024) {
      frames.push(...decoder.push(wire.subarray(at, at + 64 * 1024)));
      if (frames.length === 0)
        expect(decoder.bufferedBytes).toBe(Math.min(at + 64 * 1024, wire.length));
    }
    expect(frames).toHaveLength(1);
    // Compare as Buffers: a deep-equality diff of 16 M elements would not fit in memory.
    expect(Buffer.compare(frames[0]!.payload, payload)).toBe(0);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('gives payload views into the pushed chunk, or copies on request', () => {
    const wire = encodeFramed({ payload: new Uint8Array([5, 6, 7]) });
    const [viewed] = new FrameDecoder().push(wire);
    expect(viewed!.payload.buffer).toBe(wire.buffer);
    const [copied] = new FrameDecoder({ copyPayloads: true }).push(wire);
    expect(copied!.payload.buffer).not.toBe(wire.buffer);
    expect(copied!.payload).toStrictEqual(new Uint8Array([5, 6, 7]));
  });

  it('rejects an oversize frame from its header, before buffering the body', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const header = new Uint8Array([1, 0, 0, 0, 0]);
    new DataView(header.buffer).setUint32(1, 1025, true);
    expect(() => decoder.push(header)).toThrow(
      expect.objectContaining({ code: 'FRAME_TOO_LARGE', length: 1025, max: 1024 }),
    );
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('rejects a bad version byte even when it arrives alone', () => {
    const decoder = new FrameDecoder();
    expect(() => decoder.push(new Uint8Array([0x47]))).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_FRAMING_VERSION', version: 0x47 }),
    );
  });

  it('ends with UNEXPECTED_EOF inside a frame, and cleanly between frames', () => {
    const wire = encodeFramed({ payload: new Uint8Array(10) });
    const decoder = new FrameDecoder();
    decoder.push(wire.subarray(0, 7));
    expect(() => decoder.end()).toThrow(
      expect.objectContaining({ code: 'UNEXPECTED_EOF', buffered: 7 }),
    );
    const clean = new FrameDecoder();
    clean.push(wire);
    expect(() => clean.end()).not.toThrow();
  });

  it('returns frames decoded before bad bytes, then fails on the next call and stays failed', () => {
    const good = encodeFramed({ requestId: 1n });
    const decoder = new FrameDecoder();
    const frames = decoder.push(concat([good, new Uint8Array([9, 9])]));
    expect(frames.map((f) => f.requestId)).toEqual([1n]);
    expect(decoder.error?.code).toBe('UNSUPPORTED_FRAMING_VERSION');
    expect(() => decoder.push(good)).toThrow(FramingError);
    expect(() => decoder.end()).toThrow(FramingError);
  });

  it('property: random and mutated bytes only ever yield frames or FramingError, within the cap', () => {
    const cap = 4096;
    const arbStream = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      fc
        .tuple(
          fc.array(arbFrame, { minLength: 1, maxLength: 4 }),
          fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }),
        )
        .map(([frames, edits]) => {
          const stream = concat(frames.map((f) => encodeFramed(f)));
          for (const [at, value] of edits) stream[at % stream.length] = value;
          return stream;
        }),
    );
    fc.assert(
      fc.property(arbStream, fc.array(fc.nat(), { maxLength: 10 }), (stream, offsets) => {
        const decoder = new FrameDecoder({ maxFrameBytes: cap });
        try {
          for (const chunk of cut(stream, offsets)) {
            decoder.push(chunk);
            expect(decoder.bufferedBytes).toBeLessThanOrEqual(cap + 5);
          }
          decoder.end();
        } catch (error) {
          expect(error).toBeInstanceOf(FramingError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
