import { describe, expect, it } from 'vitest';
import {
  decodeFrameHeader,
  encodeFramed,
  FRAME_HEADER_BYTES,
  FRAMING_VERSION,
  Frame,
  FrameKind,
  FramingError,
  MAX_FRAME_BYTES,
  MAX_HELLO_BYTES,
  PROTOCOL_VERSION,
  requestFrame,
  tryDecodeFramed,
} from '../src/index.js';

function framingError(fn: () => unknown): FramingError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FramingError);
    return error as FramingError;
  }
  throw new Error('expected a FramingError');
}

const sample = requestFrame({
  payloadProtocol: 0xf001,
  payload: new Uint8Array(64).fill(3),
  requestId: 9n,
});

describe('framing constants', () => {
  it('match DESIGN §2.1', () => {
    expect(FRAMING_VERSION).toBe(1);
    expect(PROTOCOL_VERSION).toBe(1);
    expect(FRAME_HEADER_BYTES).toBe(5);
    expect(MAX_FRAME_BYTES).toBe(16 * 1024 * 1024);
    expect(MAX_HELLO_BYTES).toBe(64 * 1024);
  });
});

describe('encodeFramed', () => {
  it('writes [1][u32 LE body length][body]', () => {
    const wire = encodeFramed(sample);
    const body = Frame.encode(sample);
    expect(wire[0]).toBe(1);
    expect(new DataView(wire.buffer, wire.byteOffset).getUint32(1, true)).toBe(body.length);
    expect(wire.subarray(5)).toStrictEqual(body);
  });

  it('frames an all-default frame as a zero-length body', () => {
    expect([...encodeFramed({})]).toEqual([1, 0, 0, 0, 0]);
  });

  it('refuses to produce a body over the cap', () => {
    const error = framingError(() =>
      encodeFramed({ payload: new Uint8Array(100) }, { maxFrameBytes: 64 }),
    );
    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.max).toBe(64);
    expect(error.length).toBeGreaterThan(100);
  });
});

describe('tryDecodeFramed', () => {
  const wire = encodeFramed(sample);

  it('returns null for every proper prefix, and never consumes', () => {
    const copy = wire.slice();
    for (let n = 0; n < wire.length; n++) expect(tryDecodeFramed(wire.subarray(0, n))).toBeNull();
    expect(wire).toStrictEqual(copy);
  });

  it('decodes a complete frame and reports the bytes it used', () => {
    const trailing = new Uint8Array([...wire, 1, 0]);
    const decoded = tryDecodeFramed(trailing);
    expect(decoded?.consumed).toBe(wire.length);
    expect(decoded?.frame).toStrictEqual(sample);
  });

  it('accepts a zero-length body', () => {
    const decoded = tryDecodeFramed(new Uint8Array([1, 0, 0, 0, 0]));
    expect(decoded?.consumed).toBe(5);
    expect(decoded?.frame.kind).toBe(FrameKind.REQUEST);
  });

  it('fails on a bad version byte as soon as byte 0 is seen', () => {
    const error = framingError(() => tryDecodeFramed(new Uint8Array([2])));
    expect(error.code).toBe('UNSUPPORTED_FRAMING_VERSION');
    expect(error.version).toBe(2);
  });

  it('fails on an oversize length from the header alone', () => {
    const header = new Uint8Array([1, 0, 0, 0, 0]);
    new DataView(header.buffer).setUint32(1, MAX_FRAME_BYTES + 1, true);
    const error = framingError(() => tryDecodeFramed(header));
    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.length).toBe(MAX_FRAME_BYTES + 1);
    expect(error.max).toBe(MAX_FRAME_BYTES);
  });

  it('applies a smaller cap such as the Hello cap', () => {
    const big = encodeFramed({ payload: new Uint8Array(MAX_HELLO_BYTES) });
    expect(framingError(() => tryDecodeFramed(big, { maxFrameBytes: MAX_HELLO_BYTES })).code).toBe(
      'FRAME_TOO_LARGE',
    );
    expect(tryDecodeFramed(big)).not.toBeNull();
  });

  it('reports an undecodable body as DECODE', () => {
    const error = framingError(() => tryDecodeFramed(new Uint8Array([1, 1, 0, 0, 0, 0x0f])));
    expect(error.code).toBe('DECODE');
  });

  it('decodeFrameHeader reads the length without needing the body', () => {
    expect(decodeFrameHeader(new Uint8Array([1, 0x10, 0x27, 0, 0]))).toEqual({ bodyLength: 10000 });
    expect(decodeFrameHeader(new Uint8Array([1, 0]))).toBeNull();
  });
});
