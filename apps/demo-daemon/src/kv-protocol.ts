// The framed wire: the daemon's payload protocol id, and the codec between
// KvCommand/KvReply and the protobuf messages of proto/demo_kv_v1.proto
// (generated into src/generated/ by scripts/generate.mjs). Decoding takes
// hostile bytes: the size is capped before decoding, and every failure is a
// KvProtocolError — which the daemon answers with a MALFORMED_REQUEST or
// TOO_LARGE failure, never by dropping the connection.
import {
  bigIntReader,
  bigIntWriter,
  definePayloadProtocol,
  MAX_FRAME_BYTES,
  type PayloadProtocol,
} from '@handoff/protocol';
import type protobuf from 'protobufjs/minimal.js';
import { handoff } from './generated/demo_kv_v1.js';
import type { KvCommand, KvErrorCode, KvReply, KvStats } from './kv-service.js';

/**
 * 0xF0D0 ("D0" for demo): in the private-use range (0xF000–0xFFFF), so it
 * can collide with no first-party or registered consumer id.
 * definePayloadProtocol checks exactly that, and throws otherwise.
 */
export const KV_PAYLOAD_PROTOCOL: PayloadProtocol = definePayloadProtocol('demo-kv', 0xf0d0);

const pb = handoff.demo_kv.v1;

export type KvProtocolErrorCode = 'TOO_LARGE' | 'UNDECODABLE' | 'EMPTY';

export class KvProtocolError extends Error {
  override readonly name = 'KvProtocolError';
  readonly code: KvProtocolErrorCode;
  constructor(code: KvProtocolErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

export interface DecodeOptions {
  /** Larger payloads are refused before decoding (default: the 16 MiB frame cap). */
  maxBytes?: number;
}

/** Error codes as the wire numbers them (enum ErrorCode in the .proto). */
const ERROR_NUMBERS: Record<Exclude<KvErrorCode, 'UNKNOWN'>, number> = {
  MALFORMED_REQUEST: pb.ErrorCode.MALFORMED_REQUEST,
  INVALID_KEY: pb.ErrorCode.INVALID_KEY,
  INVALID_VALUE: pb.ErrorCode.INVALID_VALUE,
  INVALID_ARGUMENT: pb.ErrorCode.INVALID_ARGUMENT,
  BUSY: pb.ErrorCode.BUSY,
  TOO_LARGE: pb.ErrorCode.TOO_LARGE,
};
const ERROR_NAMES = new Map(
  Object.entries(ERROR_NUMBERS).map(([name, id]) => [id, name as KvErrorCode]),
);

export function encodeRequest(command: KvCommand): Uint8Array {
  let message: object;
  switch (command.op) {
    case 'get':
      message = { get: omitDefaults({ key: command.key, waitMs: command.waitMs }) };
      break;
    case 'set':
      message = {
        set: omitDefaults({ key: command.key, value: command.value, ttlMs: command.ttlMs }),
      };
      break;
    case 'delete':
      message = { delete: omitDefaults({ key: command.key }) };
      break;
    case 'stats':
      message = { stats: {} };
      break;
  }
  return pb.Request.encode(message as handoff.demo_kv.v1.Request, bigIntWriter()).finish();
}

/** Decodes a Request payload. Throws KvProtocolError; validating keys and values is the store's. */
export function decodeRequest(bytes: Uint8Array, options: DecodeOptions = {}): KvCommand {
  const request = decode('Request', bytes, options, (reader) => pb.Request.decode(reader));
  switch (request.command) {
    case 'get':
      return { op: 'get', key: request.get!.key, waitMs: request.get!.waitMs };
    case 'set':
      return {
        op: 'set',
        key: request.set!.key,
        value: request.set!.value,
        ttlMs: request.set!.ttlMs,
      };
    case 'delete':
      return { op: 'delete', key: request.delete!.key };
    case 'stats':
      return { op: 'stats' };
    default:
      throw new KvProtocolError('EMPTY', 'the Request sets no command');
  }
}

export function encodeResponse(reply: KvReply): Uint8Array {
  let message: object;
  switch (reply.result) {
    case 'found':
      message = {
        found: omitDefaults({ value: reply.value, ttlRemainingMs: reply.ttlRemainingMs }),
      };
      break;
    case 'notFound':
      message = { notFound: {} };
      break;
    case 'stored':
      message = { stored: {} };
      break;
    case 'deleted':
      message = { deleted: {} };
      break;
    case 'stats':
      message = { stats: statsToWire(reply.stats) };
      break;
    case 'failure':
      message = {
        failure: omitDefaults({
          code: reply.code === 'UNKNOWN' ? 0 : ERROR_NUMBERS[reply.code],
          message: reply.message,
        }),
      };
      break;
  }
  return pb.Response.encode(message as handoff.demo_kv.v1.Response, bigIntWriter()).finish();
}

/** Decodes a Response payload (a client reads what a daemon sent). Throws KvProtocolError. */
export function decodeResponse(bytes: Uint8Array, options: DecodeOptions = {}): KvReply {
  const response = decode('Response', bytes, options, (reader) => pb.Response.decode(reader));
  switch (response.result) {
    case 'found':
      return {
        result: 'found',
        value: response.found!.value,
        ttlRemainingMs: response.found!.ttlRemainingMs,
      };
    case 'notFound':
      return { result: 'notFound' };
    case 'stored':
      return { result: 'stored' };
    case 'deleted':
      return { result: 'deleted' };
    case 'stats':
      return { result: 'stats', stats: statsFromWire(response.stats!) };
    case 'failure':
      return {
        result: 'failure',
        code: ERROR_NAMES.get(response.failure!.code) ?? 'UNKNOWN',
        message: response.failure!.message,
      };
    default:
      throw new KvProtocolError('EMPTY', 'the Response sets no result');
  }
}

function decode<T>(
  typeName: string,
  bytes: Uint8Array,
  options: DecodeOptions,
  run: (reader: protobuf.Reader) => T,
): T {
  const max = options.maxBytes ?? MAX_FRAME_BYTES;
  if (bytes.length > max) {
    throw new KvProtocolError(
      'TOO_LARGE',
      `a ${bytes.length}-byte ${typeName} is over the ${max}-byte cap`,
    );
  }
  try {
    return run(bigIntReader(bytes));
  } catch (error) {
    // protobufjs throws plain Errors and RangeErrors for truncated or
    // malformed input (and for nesting past its recursion limit).
    throw new KvProtocolError(
      'UNDECODABLE',
      `cannot decode ${typeName}: ${(error as Error)?.message ?? String(error)}`,
      error,
    );
  }
}

/**
 * Proto3 leaves default values off the wire; the generated encoder writes
 * whatever is present, so the canonical encoding drops them here.
 */
function omitDefaults(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    const isDefault =
      value === 0 || value === '' || (value instanceof Uint8Array && value.length === 0);
    if (!isDefault) out[key] = value;
  }
  return out;
}

/**
 * A decoded 64-bit field: BigIntReader's bigint when it was on the wire,
 * else the generated prototype's default (a number 0, or a Long zero).
 */
type DecodedU64 = bigint | number | { low: number; high: number };

function u64FromWire(value: DecodedU64): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return BigInt(value);
  return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
}

function statsToWire(s: KvStats): Record<string, unknown> {
  // bigIntWriter() (see encodeResponse) takes bigint for uint64 fields,
  // range-checked; protobufjs's own writer would write 0 for one.
  const u64 = (v: bigint) => (v === 0n ? 0 : v);
  return omitDefaults({
    entries: s.entries,
    bytes: u64(s.bytes),
    maxEntries: s.maxEntries,
    maxBytes: u64(s.maxBytes),
    hits: u64(s.hits),
    misses: u64(s.misses),
    sets: u64(s.sets),
    deletes: u64(s.deletes),
    expired: u64(s.expired),
    evicted: u64(s.evicted),
    connections: s.connections,
    handoffs: u64(s.handoffs),
    uptimeMs: u64(s.uptimeMs),
    waiting: s.waiting,
  });
}

function statsFromWire(s: handoff.demo_kv.v1.Stats): KvStats {
  return {
    entries: s.entries,
    bytes: u64FromWire(s.bytes),
    maxEntries: s.maxEntries,
    maxBytes: u64FromWire(s.maxBytes),
    hits: u64FromWire(s.hits),
    misses: u64FromWire(s.misses),
    sets: u64FromWire(s.sets),
    deletes: u64FromWire(s.deletes),
    expired: u64FromWire(s.expired),
    evicted: u64FromWire(s.evicted),
    connections: s.connections,
    handoffs: u64FromWire(s.handoffs),
    uptimeMs: u64FromWire(s.uptimeMs),
    waiting: s.waiting,
  };
}
