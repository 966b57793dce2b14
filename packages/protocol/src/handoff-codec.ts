// The handoff (DESIGN §2.5): the HandoffOffer a broker sends a daemon with a
// client's fd, and the HandoffAck that comes back (relayed to the client as
// well), as shapes and message values, with hand-written decoders. Each
// handoff decodes one offer (the daemon) and one ack twice (the broker, and
// the client reading the relay), and the broker encodes one offer and one
// relayed ack, the daemon one ack. The generated decoder builds a protobufjs
// object and a Reader per message, then copied into our plain object, and
// the generated encoder queues an operation object per field before writing
// any byte; these decode into the plain object directly, and encode into a
// right-sized output in one pass. The generated code stays the reference:
// property tests check they agree with it, byte for byte on every message
// and on every input, valid or not (handoff-codec.test.ts).
import { defineMessage, type MessageType } from './message-type.js';
import { empty, generated, typeName } from './schema.js';
import { utf8ByteLength, writeUtf8 } from './utf8.js';
import { Cursor, decodeUtf8 } from './wire-cursor.js';
import { allocate } from './wire-io.js';
import {
  u64High,
  u64Low,
  varint32Size,
  varint64Size,
  writeVarint32,
  writeVarint64,
} from './wire-write.js';

export interface HandoffOffer {
  handleValue: bigint;
  token: Uint8Array;
  serviceName: string;
  correlationId: bigint;
  /** Ours (field 1000): client bytes the broker read past the Hello. */
  bufferedClientBytes: Uint8Array;
  /** Ours (field 1001): bytes the backend writes to the client first, if it accepts. */
  clientPrelude: Uint8Array;
}

function newHandoffOffer(): HandoffOffer {
  return {
    handleValue: 0n,
    token: empty(),
    serviceName: '',
    correlationId: 0n,
    bufferedClientBytes: empty(),
    clientPrelude: empty(),
  };
}

export const HandoffOffer: MessageType<HandoffOffer> = defineMessage<HandoffOffer>({
  typeName: typeName('HandoffOffer'),
  generated: generated('HandoffOffer'),
  defaults: newHandoffOffer,
  u64: ['handleValue', 'correlationId'],
  decode: decodeHandoffOffer,
  encode: encodeHandoffOffer,
});

export interface HandoffAck {
  token: Uint8Array;
  accepted: boolean;
  errorDetail: string;
  correlationId: bigint;
  /** Ours (field 1000): the backend wrote the offer's client_prelude to the client. */
  preludeWritten: boolean;
}

function newHandoffAck(): HandoffAck {
  return {
    token: empty(),
    accepted: false,
    errorDetail: '',
    correlationId: 0n,
    preludeWritten: false,
  };
}

export const HandoffAck: MessageType<HandoffAck> = defineMessage<HandoffAck>({
  typeName: typeName('HandoffAck'),
  generated: generated('HandoffAck'),
  defaults: newHandoffAck,
  u64: ['correlationId'],
  decode: decodeHandoffAck,
  encode: encodeHandoffAck,
});

// ---------------------------------------------------------------------------
// Decoding, with the reading rules of wire-cursor.ts (the generated decoder's):
// last value wins, a known field with the other wire type is skipped like an
// unknown one, bytes are views into the input.

/** Decodes a HandoffOffer body; throws FrameSyntaxError for malformed bytes. */
function decodeHandoffOffer(bytes: Uint8Array): HandoffOffer {
  const offer = newHandoffOffer();
  const c = new Cursor(bytes, bytes.length);
  while (c.pos < c.end) {
    const tag = c.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      switch (field) {
        case 1:
          offer.handleValue = c.varint64();
          continue;
        case 4:
          offer.correlationId = c.varint64();
          continue;
      }
    } else if (wire === 2) {
      switch (field) {
        case 2:
          offer.token = c.bytesFrom(c.delimited());
          continue;
        case 3: {
          const start = c.delimited();
          offer.serviceName = decodeUtf8(c.buf, start, c.pos);
          continue;
        }
        case 1000:
          offer.bufferedClientBytes = c.bytesFrom(c.delimited());
          continue;
        case 1001:
          offer.clientPrelude = c.bytesFrom(c.delimited());
          continue;
      }
    }
    c.skip(wire, field, 0);
  }
  return offer;
}

/** Decodes a HandoffAck body; throws FrameSyntaxError for malformed bytes. */
function decodeHandoffAck(bytes: Uint8Array): HandoffAck {
  const ack = newHandoffAck();
  const c = new Cursor(bytes, bytes.length);
  while (c.pos < c.end) {
    const tag = c.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      switch (field) {
        case 2:
          ack.accepted = c.bool();
          continue;
        case 4:
          ack.correlationId = c.varint64();
          continue;
        case 1000:
          ack.preludeWritten = c.bool();
          continue;
      }
    } else if (wire === 2) {
      switch (field) {
        case 1:
          ack.token = c.bytesFrom(c.delimited());
          continue;
        case 3: {
          const start = c.delimited();
          ack.errorDetail = decodeUtf8(c.buf, start, c.pos);
          continue;
        }
      }
    }
    c.skip(wire, field, 0);
  }
  return ack;
}

// ---------------------------------------------------------------------------
// Encoding: canonical, as the generated encoder writes it (defaults left out,
// fields in ascending order). Tags of fields 1000 and 1001 take two bytes.

const TAG_BUFFERED_CLIENT_BYTES = [0xc2, 0x3e] as const; // field 1000, length-delimited
const TAG_CLIENT_PRELUDE = [0xca, 0x3e] as const; // field 1001, length-delimited
const TAG_PRELUDE_WRITTEN = [0xc0, 0x3e] as const; // field 1000, varint

/** Bytes a length-delimited field of `length` takes after its tag. */
const delimitedSize = (length: number) => varint32Size(length) + length;

function writeBytes(bytes: Uint8Array, out: Uint8Array, at: number): number {
  const pos = writeVarint32(bytes.length, out, at);
  out.set(bytes, pos);
  return pos + bytes.length;
}

function encodeHandoffOffer(offer: Partial<HandoffOffer>): Uint8Array {
  const handleLo = u64Low(offer.handleValue);
  const handleHi = u64High(offer.handleValue);
  const correlationLo = u64Low(offer.correlationId);
  const correlationHi = u64High(offer.correlationId);
  const token = offer.token ?? empty();
  const serviceName = offer.serviceName ?? '';
  const serviceNameLength = utf8ByteLength(serviceName);
  const buffered = offer.bufferedClientBytes ?? empty();
  const prelude = offer.clientPrelude ?? empty();

  let size = 0;
  if (handleLo !== 0 || handleHi !== 0) size += 1 + varint64Size(handleLo, handleHi);
  if (token.length !== 0) size += 1 + delimitedSize(token.length);
  if (serviceNameLength !== 0) size += 1 + delimitedSize(serviceNameLength);
  if (correlationLo !== 0 || correlationHi !== 0)
    size += 1 + varint64Size(correlationLo, correlationHi);
  if (buffered.length !== 0) size += 2 + delimitedSize(buffered.length);
  if (prelude.length !== 0) size += 2 + delimitedSize(prelude.length);

  const out = allocate(size);
  let at = 0;
  if (handleLo !== 0 || handleHi !== 0) {
    out[at++] = 0x08;
    at = writeVarint64(handleLo, handleHi, out, at);
  }
  if (token.length !== 0) {
    out[at++] = 0x12;
    at = writeBytes(token, out, at);
  }
  if (serviceNameLength !== 0) {
    out[at++] = 0x1a;
    at = writeVarint32(serviceNameLength, out, at);
    at = writeUtf8(serviceName, out, at);
  }
  if (correlationLo !== 0 || correlationHi !== 0) {
    out[at++] = 0x20;
    at = writeVarint64(correlationLo, correlationHi, out, at);
  }
  if (buffered.length !== 0) {
    out[at++] = TAG_BUFFERED_CLIENT_BYTES[0];
    out[at++] = TAG_BUFFERED_CLIENT_BYTES[1];
    at = writeBytes(buffered, out, at);
  }
  if (prelude.length !== 0) {
    out[at++] = TAG_CLIENT_PRELUDE[0];
    out[at++] = TAG_CLIENT_PRELUDE[1];
    writeBytes(prelude, out, at);
  }
  return out;
}

function encodeHandoffAck(ack: Partial<HandoffAck>): Uint8Array {
  const token = ack.token ?? empty();
  const detail = ack.errorDetail ?? '';
  const detailLength = utf8ByteLength(detail);
  const correlationLo = u64Low(ack.correlationId);
  const correlationHi = u64High(ack.correlationId);

  let size = 0;
  if (token.length !== 0) size += 1 + delimitedSize(token.length);
  if (ack.accepted) size += 2;
  if (detailLength !== 0) size += 1 + delimitedSize(detailLength);
  if (correlationLo !== 0 || correlationHi !== 0)
    size += 1 + varint64Size(correlationLo, correlationHi);
  if (ack.preludeWritten) size += 3;

  const out = allocate(size);
  let at = 0;
  if (token.length !== 0) {
    out[at++] = 0x0a;
    at = writeBytes(token, out, at);
  }
  if (ack.accepted) {
    out[at++] = 0x10;
    out[at++] = 0x01;
  }
  if (detailLength !== 0) {
    out[at++] = 0x1a;
    at = writeVarint32(detailLength, out, at);
    at = writeUtf8(detail, out, at);
  }
  if (correlationLo !== 0 || correlationHi !== 0) {
    out[at++] = 0x20;
    at = writeVarint64(correlationLo, correlationHi, out, at);
  }
  if (ack.preludeWritten) {
    out[at++] = TAG_PRELUDE_WRITTEN[0];
    out[at++] = TAG_PRELUDE_WRITTEN[1];
    out[at] = 0x01;
  }
  return out;
}
