// The handshake: the Hello a client opens every connection with and the
// HelloReply it gets back (a Negotiated or a Refused), as shapes and
// message values, with hand-written decoders for the two decodes every
// connect makes: the broker reads a Hello from each client, and each
// client reads the broker's HelloReply. The generated decoder builds a
// protobufjs object and a Reader per message, which our layer then copies
// into a plain object; these write the plain object directly. The
// generated code stays the reference: differential property tests check
// they agree on every input, valid or not (hello-codec.test.ts).
import type { ErrorCode } from './enums.js';
import { defineMessage, type MessageType } from './message-type.js';
import { empty, generated, typeName } from './schema.js';
import { Cursor, decodeUtf8 } from './wire-cursor.js';

export interface Hello {
  clientMinProtocol: number;
  clientMaxProtocol: number;
  serviceName: string;
  wantedVersion: string;
  clientVersion: string;
  clientCapabilities: bigint;
  authToken: Uint8Array;
  requestId: string;
  connectionId: bigint;
  peerPid: number;
  clientLibName: string;
  clientLibVersion: string;
  peerAttestationNonce: Uint8Array;
  capabilityToken: Uint8Array;
  clientKeepaliveSecs: bigint;
}

export const Hello: MessageType<Hello> = defineMessage<Hello>({
  typeName: typeName('Hello'),
  generated: generated('Hello'),
  defaults: newHello,
  u64: ['clientCapabilities', 'connectionId', 'clientKeepaliveSecs'],
  // Decoded once per connection by the broker: by hand (below).
  decode: decodeHello,
});

export interface Negotiated {
  negotiatedProtocol: number;
  daemonVersion: string;
  backendPipe: string;
  warnings: string[];
  serverCapabilities: bigint;
  keepaliveIntervalSecs: bigint;
  handlePassedToken: Uint8Array;
  connectionId: bigint;
}

export const Negotiated: MessageType<Negotiated> = defineMessage<Negotiated>({
  typeName: typeName('Negotiated'),
  generated: generated('Negotiated'),
  defaults: newNegotiated,
  u64: ['serverCapabilities', 'keepaliveIntervalSecs', 'connectionId'],
});

export interface Refused {
  reason: string;
  daemonMinProtocol: number;
  daemonMaxProtocol: number;
  code: ErrorCode;
  details: Record<string, string>;
  retryAfterMs: bigint;
}

export const Refused: MessageType<Refused> = defineMessage<Refused>({
  typeName: typeName('Refused'),
  generated: generated('Refused'),
  defaults: () => ({
    reason: '',
    daemonMinProtocol: 0,
    daemonMaxProtocol: 0,
    code: 0,
    details: {},
    retryAfterMs: 0n,
  }),
  u64: ['retryAfterMs'],
});

/** The oneof `result`: exactly one of the two, or neither. */
export type HelloResult =
  | { case: 'negotiated'; value: Negotiated }
  | { case: 'refused'; value: Refused }
  | { case: undefined; value?: undefined };

export interface HelloReply {
  result: HelloResult;
}

export const HelloReply: MessageType<HelloReply> = defineMessage<HelloReply>({
  typeName: typeName('HelloReply'),
  generated: generated('HelloReply'),
  defaults: () => ({ result: { case: undefined } }),
  // Decoded once per connection by every client: by hand, a Refused aside.
  decode: decodeHelloReply,
  toWire: (message) => {
    const result = message.result;
    if (result?.case === 'negotiated') return { negotiated: Negotiated.toWire(result.value) };
    if (result?.case === 'refused') return { refused: Refused.toWire(result.value) };
    return {};
  },
  fromWire: (decoded: { negotiated?: object | null; refused?: object | null }) => {
    if (decoded.negotiated) {
      return { result: { case: 'negotiated', value: Negotiated.fromWire(decoded.negotiated) } };
    }
    if (decoded.refused) {
      return { result: { case: 'refused', value: Refused.fromWire(decoded.refused) } };
    }
    return { result: { case: undefined } };
  },
});

// ---------------------------------------------------------------------------
// Decoding, with the reading rules of wire-cursor.ts (the generated decoder's).

function stringField(c: Cursor, start: number): string {
  return decodeUtf8(c.buf, start, c.pos);
}

/** A Hello with every field at its default: what decoding starts from. */
function newHello(): Hello {
  return {
    clientMinProtocol: 0,
    clientMaxProtocol: 0,
    serviceName: '',
    wantedVersion: '',
    clientVersion: '',
    clientCapabilities: 0n,
    authToken: empty(),
    requestId: '',
    connectionId: 0n,
    peerPid: 0,
    clientLibName: '',
    clientLibVersion: '',
    peerAttestationNonce: empty(),
    capabilityToken: empty(),
    clientKeepaliveSecs: 0n,
  };
}

/** Decodes a Hello body; throws FrameSyntaxError for malformed bytes. */
function decodeHello(bytes: Uint8Array): Hello {
  const hello = newHello();
  const c = new Cursor(bytes, bytes.length);
  while (c.pos < c.end) {
    const tag = c.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    // Fields by wire type: varints (uint32, uint64) and length-delimited
    // (string, bytes); a known field with the other wire type is skipped.
    if (wire === 0) {
      switch (field) {
        case 1:
          hello.clientMinProtocol = c.varint32() >>> 0;
          continue;
        case 2:
          hello.clientMaxProtocol = c.varint32() >>> 0;
          continue;
        case 6:
          hello.clientCapabilities = c.varint64();
          continue;
        case 9:
          hello.connectionId = c.varint64();
          continue;
        case 10:
          hello.peerPid = c.varint32() >>> 0;
          continue;
        case 15:
          hello.clientKeepaliveSecs = c.varint64();
          continue;
      }
    } else if (wire === 2) {
      switch (field) {
        case 3:
          hello.serviceName = stringField(c, c.delimited());
          continue;
        case 4:
          hello.wantedVersion = stringField(c, c.delimited());
          continue;
        case 5:
          hello.clientVersion = stringField(c, c.delimited());
          continue;
        case 7:
          hello.authToken = c.bytesFrom(c.delimited());
          continue;
        case 8:
          hello.requestId = stringField(c, c.delimited());
          continue;
        case 11:
          hello.clientLibName = stringField(c, c.delimited());
          continue;
        case 12:
          hello.clientLibVersion = stringField(c, c.delimited());
          continue;
        case 13:
          hello.peerAttestationNonce = c.bytesFrom(c.delimited());
          continue;
        case 14:
          hello.capabilityToken = c.bytesFrom(c.delimited());
          continue;
      }
    }
    c.skip(wire, field, 0);
  }
  return hello;
}

/** A Negotiated with every field at its default (a fresh warnings list). */
function newNegotiated(): Negotiated {
  return {
    negotiatedProtocol: 0,
    daemonVersion: '',
    backendPipe: '',
    warnings: [],
    serverCapabilities: 0n,
    keepaliveIntervalSecs: 0n,
    handlePassedToken: empty(),
    connectionId: 0n,
  };
}

/**
 * Reads the Negotiated fields in `[c.pos, c.end)` into `into`: a second
 * occurrence of the field merges into the first, as protobuf has it (last
 * scalar wins, warnings add up). `depth` is the message's nesting, which
 * counts against the generated decoder's group limit.
 */
function readNegotiated(c: Cursor, into: Negotiated, depth: number): void {
  while (c.pos < c.end) {
    const tag = c.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      switch (field) {
        case 1:
          into.negotiatedProtocol = c.varint32() >>> 0;
          continue;
        case 5:
          into.serverCapabilities = c.varint64();
          continue;
        case 6:
          into.keepaliveIntervalSecs = c.varint64();
          continue;
        case 8:
          into.connectionId = c.varint64();
          continue;
      }
    } else if (wire === 2) {
      switch (field) {
        case 2:
          into.daemonVersion = stringField(c, c.delimited());
          continue;
        case 3:
          into.backendPipe = stringField(c, c.delimited());
          continue;
        case 4:
          into.warnings.push(stringField(c, c.delimited()));
          continue;
        case 7:
          into.handlePassedToken = c.bytesFrom(c.delimited());
          continue;
      }
    }
    c.skip(wire, field, depth);
  }
}

/**
 * Decodes a HelloReply body, or returns undefined for one that carries a
 * Refused: refusals are off the hot path (and hold a map), so the
 * generated decoder takes those whole. Throws FrameSyntaxError for
 * malformed bytes.
 */
function decodeHelloReply(bytes: Uint8Array): HelloReply | undefined {
  let negotiated: Negotiated | null = null;
  const c = new Cursor(bytes, bytes.length);
  while (c.pos < c.end) {
    const tag = c.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 2 && field === 2) return undefined;
    if (wire === 2 && field === 1) {
      const start = c.delimited();
      negotiated ??= newNegotiated();
      readNegotiated(new Cursor(bytes, c.pos, start), negotiated, 1);
      continue;
    }
    c.skip(wire, field, 0);
  }
  return negotiated === null
    ? { result: { case: undefined } }
    : { result: { case: 'negotiated', value: negotiated } };
}
