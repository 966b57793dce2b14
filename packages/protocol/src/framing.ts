// The v1 framing (DESIGN §2.1): `[u8 version = 1][u32 LE body length][Frame]`.
// Pure functions over byte arrays; the streaming decoder lives in
// frame-decoder.ts. Caps are checked from the header, before any body is
// buffered, and a bad version byte fails as soon as it is seen.
import { FRAME_HEADER_BYTES, FRAMING_VERSION, MAX_FRAME_BYTES } from './constants.js';
import { FramingError } from './errors.js';
import { encodeFramedFrame, Frame } from './frame-codec.js';

export interface FramingOptions {
  /** Largest body accepted; defaults to MAX_FRAME_BYTES (16 MiB). */
  maxFrameBytes?: number;
}

export interface DecodedFrame {
  frame: Frame;
  /** Bytes of `buf` the frame occupied, header included. */
  consumed: number;
}

/** Encodes `frame` with its 5-byte header, in one allocation. */
export function encodeFramed(frame: Partial<Frame>, options: FramingOptions = {}): Uint8Array {
  const max = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  const out = encodeFramedFrame(frame, max);
  if (typeof out === 'number') {
    throw new FramingError(
      'FRAME_TOO_LARGE',
      `frame body of ${out} bytes exceeds the ${max}-byte cap`,
      {
        length: out,
        max,
      },
    );
  }
  return out;
}

export interface FrameHeader {
  /** Length of the protobuf body that follows the 5-byte header. */
  bodyLength: number;
}

/**
 * Reads the header at the start of `buf`: null while fewer than 5 bytes
 * are there. Throws UNSUPPORTED_FRAMING_VERSION from byte 0 alone and
 * FRAME_TOO_LARGE from the length alone.
 */
export function decodeFrameHeader(
  buf: Uint8Array,
  options: FramingOptions = {},
): FrameHeader | null {
  if (buf.length === 0) return null;
  checkVersion(buf[0]!);
  if (buf.length < FRAME_HEADER_BYTES) return null;
  const bodyLength = readU32LE(buf, 1);
  checkLength(bodyLength, options.maxFrameBytes ?? MAX_FRAME_BYTES);
  return { bodyLength };
}

/**
 * Decodes the first frame of `buf` without consuming anything: null when
 * the frame is not complete yet. The payload is a view into `buf`.
 */
export function tryDecodeFramed(
  buf: Uint8Array,
  options: FramingOptions = {},
): DecodedFrame | null {
  const header = decodeFrameHeader(buf, options);
  if (header === null) return null;
  const end = FRAME_HEADER_BYTES + header.bodyLength;
  if (buf.length < end) return null;
  return { frame: Frame.decode(buf.subarray(FRAME_HEADER_BYTES, end)), consumed: end };
}

/** @internal */
export function checkVersion(version: number): void {
  if (version !== FRAMING_VERSION) {
    throw new FramingError(
      'UNSUPPORTED_FRAMING_VERSION',
      `unsupported framing version ${version} (expected ${FRAMING_VERSION})`,
      { version },
    );
  }
}

/** @internal */
export function checkLength(length: number, max: number): void {
  if (length > max) {
    throw new FramingError(
      'FRAME_TOO_LARGE',
      `frame body of ${length} bytes exceeds the ${max}-byte cap`,
      { length, max },
    );
  }
}

/** @internal */
export function readU32LE(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}
