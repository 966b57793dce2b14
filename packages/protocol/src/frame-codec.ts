// The Frame envelope, the one message on every hot path: its shape, its
// message value, and a hand-written encoder and decoder. The encoder writes
// straight into a right-sized output (header included) with no scratch
// buffer and no object copies. The generated code stays the reference:
// property tests check both directions agree with it.
import { ENVELOPE_VERSION, FRAME_HEADER_BYTES, FRAMING_VERSION } from './constants.js';
import type { FrameKind, PayloadEncoding } from './enums.js';
import { defineMessage, type MessageType } from './message-type.js';
import { empty, generated, typeName } from './schema.js';
import { utf8ByteLength, writeAscii, writeUtf8 } from './utf8.js';
import { Cursor, decodeUtf8 } from './wire-cursor.js';
import { allocate } from './wire-io.js';
import {
  int32Size,
  u64High,
  u64Low,
  varint32Size,
  varint64Size,
  writeInt32,
  writeVarint32,
  writeVarint64,
} from './wire-write.js';

/**
 * Encodes `frame` with its framing header; `max` caps the body. Strings are
 * first sized as ASCII (UTF-16 length, never more than the UTF-8 length) and
 * written by one loop that checks as it copies, with no separate scan; a
 * non-ASCII string, or a body over `max`, re-runs with `exact` sizes.
 */
export function encodeFramedFrame(
  frame: Partial<Frame>,
  max: number,
  exact = false,
): Uint8Array | number {
  const envelope = frame.envelopeVersion ?? 0;
  const kind = frame.kind ?? 0;
  const protocol = frame.payloadProtocol ?? 0;
  const payload = frame.payload;
  const encoding = frame.payloadEncoding ?? 0;
  const traceparent = frame.traceparent ?? '';
  const tracestate = frame.tracestate ?? '';
  const requestLo = u64Low(frame.requestId);
  const requestHi = u64High(frame.requestId);
  const deadlineLo = u64Low(frame.deadlineUnixMs);
  const deadlineHi = u64High(frame.deadlineUnixMs);
  const payloadLength = payload ? payload.length : 0;
  const traceparentLength = exact ? utf8ByteLength(traceparent) : traceparent.length;
  const tracestateLength = exact ? utf8ByteLength(tracestate) : tracestate.length;

  let size = 0;
  if (envelope !== 0) size += 1 + varint32Size(envelope >>> 0);
  if (kind !== 0) size += 1 + int32Size(kind | 0);
  if (protocol !== 0) size += 1 + varint32Size(protocol >>> 0);
  if (payloadLength !== 0) size += 1 + varint32Size(payloadLength) + payloadLength;
  if (requestLo !== 0 || requestHi !== 0) size += 1 + varint64Size(requestLo, requestHi);
  if (encoding !== 0) size += 1 + int32Size(encoding | 0);
  if (deadlineLo !== 0 || deadlineHi !== 0) size += 1 + varint64Size(deadlineLo, deadlineHi);
  if (traceparentLength !== 0) size += 1 + varint32Size(traceparentLength) + traceparentLength;
  if (tracestateLength !== 0) size += 1 + varint32Size(tracestateLength) + tracestateLength;
  if (size > max) return exact ? size : encodeFramedFrame(frame, max, true);

  const out = allocate(FRAME_HEADER_BYTES + size);
  out[0] = FRAMING_VERSION;
  out[1] = size & 0xff;
  out[2] = (size >>> 8) & 0xff;
  out[3] = (size >>> 16) & 0xff;
  out[4] = (size >>> 24) & 0xff;
  let at = FRAME_HEADER_BYTES;
  if (envelope !== 0) {
    out[at++] = 0x08;
    at = writeVarint32(envelope, out, at);
  }
  if (kind !== 0) {
    out[at++] = 0x10;
    at = writeInt32(kind | 0, out, at);
  }
  if (protocol !== 0) {
    out[at++] = 0x18;
    at = writeVarint32(protocol, out, at);
  }
  if (payloadLength !== 0) {
    out[at++] = 0x22;
    at = writeVarint32(payloadLength, out, at);
    if (payloadLength <= 16) for (let i = 0; i < payloadLength; i++) out[at + i] = payload![i]!;
    else out.set(payload!, at);
    at += payloadLength;
  }
  if (requestLo !== 0 || requestHi !== 0) {
    out[at++] = 0x28;
    at = writeVarint64(requestLo, requestHi, out, at);
  }
  if (encoding !== 0) {
    out[at++] = 0x30;
    at = writeInt32(encoding | 0, out, at);
  }
  if (deadlineLo !== 0 || deadlineHi !== 0) {
    out[at++] = 0x38;
    at = writeVarint64(deadlineLo, deadlineHi, out, at);
  }
  if (traceparentLength !== 0) {
    out[at++] = 0x42;
    at = writeVarint32(traceparentLength, out, at);
    at = exact ? writeUtf8(traceparent, out, at) : writeAscii(traceparent, out, at);
    if (at < 0) return encodeFramedFrame(frame, max, true);
  }
  if (tracestateLength !== 0) {
    out[at++] = 0x4a;
    at = writeVarint32(tracestateLength, out, at);
    at = exact ? writeUtf8(tracestate, out, at) : writeAscii(tracestate, out, at);
    if (at < 0) return encodeFramedFrame(frame, max, true);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Decoding, with the reading rules of wire-cursor.ts (the generated decoder's).

const EMPTY = Object.freeze(new Uint8Array(0)) as Uint8Array;

/** Decodes a Frame body; throws FrameSyntaxError with a reason for malformed bytes. */
function decodeFrameBody(bytes: Uint8Array): Frame {
  const frame: Frame = {
    envelopeVersion: 0,
    kind: 0,
    payloadProtocol: 0,
    payload: EMPTY,
    requestId: 0n,
    payloadEncoding: 0,
    deadlineUnixMs: 0n,
    traceparent: '',
    tracestate: '',
  };
  const c = new Cursor(bytes, bytes.length);
  while (c.pos < c.end) {
    const tag = c.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    switch (field) {
      case 1:
        if (wire === 0) {
          frame.envelopeVersion = c.varint32() >>> 0;
          continue;
        }
        break;
      case 2:
        if (wire === 0) {
          frame.kind = c.varint32() | 0;
          continue;
        }
        break;
      case 3:
        if (wire === 0) {
          frame.payloadProtocol = c.varint32() >>> 0;
          continue;
        }
        break;
      case 4:
        if (wire === 2) {
          const start = c.delimited();
          frame.payload = c.pos === start ? EMPTY : bytes.subarray(start, c.pos);
          continue;
        }
        break;
      case 5:
        if (wire === 0) {
          frame.requestId = c.varint64();
          continue;
        }
        break;
      case 6:
        if (wire === 0) {
          frame.payloadEncoding = c.varint32() | 0;
          continue;
        }
        break;
      case 7:
        if (wire === 0) {
          frame.deadlineUnixMs = c.varint64();
          continue;
        }
        break;
      case 8:
        if (wire === 2) {
          const start = c.delimited();
          frame.traceparent = decodeUtf8(bytes, start, c.pos);
          continue;
        }
        break;
      case 9:
        if (wire === 2) {
          const start = c.delimited();
          frame.tracestate = decodeUtf8(bytes, start, c.pos);
          continue;
        }
        break;
    }
    c.skip(wire, field, 0);
  }
  return frame;
}

export interface Frame {
  envelopeVersion: number;
  kind: FrameKind;
  payloadProtocol: number;
  payload: Uint8Array;
  requestId: bigint;
  payloadEncoding: PayloadEncoding;
  deadlineUnixMs: bigint;
  traceparent: string;
  tracestate: string;
}

/** `Frame.create()` sets `envelopeVersion` to 1, the only v1 value. */
export const Frame: MessageType<Frame> = defineMessage<Frame>({
  typeName: typeName('Frame'),
  generated: generated('Frame'),
  defaults: () => ({
    envelopeVersion: 0,
    kind: 0,
    payloadProtocol: 0,
    payload: empty(),
    requestId: 0n,
    payloadEncoding: 0,
    deadlineUnixMs: 0n,
    traceparent: '',
    tracestate: '',
  }),
  createDefaults: () => ({ envelopeVersion: ENVELOPE_VERSION }),
  u64: ['requestId', 'deadlineUnixMs'],
  // The envelope is on every hot path: a hand-written decoder, checked
  // against the generated one by a differential property test.
  decode: decodeFrameBody,
});
