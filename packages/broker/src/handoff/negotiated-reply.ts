// The HelloReply payload of a Negotiated, as the broker sends one per routed
// Hello. Byte for byte what HelloReply.encode makes (test/negotiated-reply
// .test.ts holds it to that), without running the encoder per Hello.
import { CAP_HANDLE_PASSING, HelloReply, Negotiated, PROTOCOL_VERSION } from '@handoff/protocol';

/** The backend a Negotiated names (a Backend; only these fields are read). */
export interface NegotiatedTarget {
  readonly definition: { readonly version: string };
  readonly endpoint: string;
}

/**
 * The HelloReply { negotiated } sending a client to `target`: handle passing
 * offered when `canHandoff`, `token` empty unless it is. The bytes are good
 * until the next call: copy them first (encodeFramed does).
 */
export function negotiatedReply(
  target: NegotiatedTarget,
  canHandoff: boolean,
  token: Uint8Array,
  connectionId: bigint,
): Uint8Array {
  // Outside uint64 the encoder's own range error is the answer.
  if (connectionId < 0n || connectionId > U64_MAX) {
    const value = negotiatedFor(target, canHandoff, { token, connectionId });
    return HelloReply.encode({ result: { case: 'negotiated', value } });
  }
  return helloReplyBytes(constantFields(target, canHandoff), token, connectionId);
}

/** The Negotiated message itself, as HelloReply.encode takes it. */
function negotiatedFor(
  target: NegotiatedTarget,
  canHandoff: boolean,
  varying: { token: Uint8Array; connectionId: bigint },
): Negotiated {
  return Negotiated.create({
    negotiatedProtocol: PROTOCOL_VERSION,
    daemonVersion: target.definition.version,
    backendPipe: target.endpoint,
    serverCapabilities: canHandoff ? CAP_HANDLE_PASSING : 0n,
    handlePassedToken: varying.token,
    connectionId: varying.connectionId,
  });
}

// Encoding the whole HelloReply per Hello was a sizeable share of a Hello's
// CPU (issue 17), yet only the token (field 7) and connection_id (field 8)
// change from one client of a backend to the next. The canonical encoding
// writes fields in ascending order, so the Negotiated is the encoder's own
// bytes for the fields before 7, cached per backend, followed by those two.
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const NO_VARYING = { token: new Uint8Array(0), connectionId: 0n };
const TOKEN_TAG = (7 << 3) | 2;
const CONNECTION_ID_TAG = (8 << 3) | 0;
const NEGOTIATED_TAG = (1 << 3) | 2;

interface ConstantFields {
  readonly version: string;
  readonly endpoint: string;
  /** Without and with CAP_HANDLE_PASSING, each made when first needed. */
  plain?: Uint8Array;
  handoff?: Uint8Array;
}

const constants = new WeakMap<NegotiatedTarget, ConstantFields>();

function constantFields(target: NegotiatedTarget, canHandoff: boolean): Uint8Array {
  const version = target.definition.version;
  const endpoint = target.endpoint;
  let cached = constants.get(target);
  // A backend whose version or endpoint changed gets its bytes anew.
  if (cached === undefined || cached.version !== version || cached.endpoint !== endpoint) {
    cached = { version, endpoint };
    constants.set(target, cached);
  }
  const key = canHandoff ? 'handoff' : 'plain';
  let bytes = cached[key];
  if (bytes === undefined) {
    // A copy of its own: the encoder's output shares a 64 KiB slab, which
    // a cache entry would otherwise keep alive.
    bytes = Negotiated.encode(negotiatedFor(target, canHandoff, NO_VARYING)).slice();
    cached[key] = bytes;
  }
  return bytes;
}

// Every reply is copied into its frame before the next is made, so one array
// serves them all: a buffer per reply cost more than writing the reply.
let scratch = new Uint8Array(256);

function helloReplyBytes(prefix: Uint8Array, token: Uint8Array, connectionId: bigint): Uint8Array {
  // Ids are a counter: a Number's varint unless one ever passes 32 bits.
  const smallId = connectionId <= 0xffff_ffffn ? Number(connectionId) : -1;
  const tokenBytes = token.length === 0 ? 0 : 1 + varintSize(token.length) + token.length;
  const idBytes =
    connectionId === 0n
      ? 0
      : 1 + (smallId >= 0 ? varintSize(smallId) : bigVarintSize(connectionId));
  const negotiatedLength = prefix.length + tokenBytes + idBytes;
  const size = 1 + varintSize(negotiatedLength) + negotiatedLength;
  if (size > scratch.length) scratch = new Uint8Array(size);
  const out = scratch;
  out[0] = NEGOTIATED_TAG;
  let at = writeVarint(negotiatedLength, out, 1);
  out.set(prefix, at);
  at += prefix.length;
  if (tokenBytes !== 0) {
    out[at++] = TOKEN_TAG;
    at = writeVarint(token.length, out, at);
    out.set(token, at);
    at += token.length;
  }
  if (idBytes !== 0) {
    out[at++] = CONNECTION_ID_TAG;
    if (smallId >= 0) writeVarint(smallId, out, at);
    else writeBigVarint(connectionId, out, at);
  }
  return out.subarray(0, size);
}

/** Bytes of the varint of `value`, a uint32. */
function varintSize(value: number): number {
  let size = 1;
  for (let v = value >>> 7; v !== 0; v >>>= 7) size++;
  return size;
}

function writeVarint(value: number, out: Uint8Array, at: number): number {
  let v = value >>> 0;
  let pos = at;
  while (v > 0x7f) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

function bigVarintSize(value: bigint): number {
  let size = 1;
  for (let v = value; v >= 0x80n; v >>= 7n) size++;
  return size;
}

function writeBigVarint(value: bigint, out: Uint8Array, at: number): void {
  let v = value;
  let pos = at;
  while (v >= 0x80n) {
    out[pos++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  out[pos] = Number(v);
}
