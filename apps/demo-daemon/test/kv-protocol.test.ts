import {
  createProtocolRegistry,
  isFirstParty,
  isPrivateUseId,
  isRegisteredConsumerId,
  KNOWN_CONSUMER_PAYLOAD_PROTOCOLS,
} from '@handoff/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  KV_PAYLOAD_PROTOCOL,
  KvProtocolError,
} from '../src/kv-protocol.js';
import type { KvCommand, KvReply, KvStats } from '../src/kv-service.js';
import { text } from './harness.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/ /g, ''), 'hex'));

/** Byte fields as hex, so a Buffer view and a Uint8Array with the same bytes compare equal. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return hex(value);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

describe('the payload protocol id', () => {
  it('is 0xF0D0, private use: no first-party or registered consumer id', () => {
    expect(KV_PAYLOAD_PROTOCOL).toEqual({ name: 'demo-kv', id: 0xf0d0 });
    expect(isPrivateUseId(KV_PAYLOAD_PROTOCOL.id)).toBe(true);
    expect(isFirstParty(KV_PAYLOAD_PROTOCOL.id)).toBe(false);
    expect(isRegisteredConsumerId(KV_PAYLOAD_PROTOCOL.id)).toBe(false);
    expect(KNOWN_CONSUMER_PAYLOAD_PROTOCOLS).not.toContain(KV_PAYLOAD_PROTOCOL.id);
    expect(createProtocolRegistry([KV_PAYLOAD_PROTOCOL]).ids()).toEqual([0xf0d0]);
  });
});

// Written out by hand from the .proto's field numbers, never produced by
// the encoder under test.
const GOLDEN_REQUESTS: [string, KvCommand][] = [
  ['0a04 0a026162', { op: 'get', key: text('ab'), waitMs: 0 }],
  ['0a06 0a016b 10e807', { op: 'get', key: text('k'), waitMs: 1000 }],
  ['1209 0a016b 120176 18e807', { op: 'set', key: text('k'), value: text('v'), ttlMs: 1000 }],
  ['1206 0a016b 120176', { op: 'set', key: text('k'), value: text('v'), ttlMs: 0 }],
  ['1a03 0a016b', { op: 'delete', key: text('k') }],
  ['2200', { op: 'stats' }],
];

const STATS_ZERO: KvStats = {
  entries: 0,
  bytes: 0n,
  maxEntries: 0,
  maxBytes: 0n,
  hits: 0n,
  misses: 0n,
  sets: 0n,
  deletes: 0n,
  expired: 0n,
  evicted: 0n,
  connections: 0,
  handoffs: 0n,
  uptimeMs: 0n,
  waiting: 0,
};

const GOLDEN_REPLIES: [string, KvReply][] = [
  ['0a04 0a026869', { result: 'found', value: text('hi'), ttlRemainingMs: 0 }],
  ['0a06 0a026869 1005', { result: 'found', value: text('hi'), ttlRemainingMs: 5 }],
  ['1200', { result: 'notFound' }],
  ['1a00', { result: 'stored' }],
  ['2200', { result: 'deleted' }],
  ['3205 0802 120178', { result: 'failure', code: 'INVALID_KEY', message: 'x' }],
  ['3202 0806', { result: 'failure', code: 'TOO_LARGE', message: '' }],
  // hits = 2^64 − 1: ten varint bytes, every bit kept.
  [
    '2a0b 28ffffffffffffffffff01',
    { result: 'stats', stats: { ...STATS_ZERO, hits: 2n ** 64n - 1n } },
  ],
];

describe('golden bytes', () => {
  it.each(GOLDEN_REQUESTS)('Request %s', (golden, command) => {
    expect(hex(encodeRequest(command))).toBe(golden.replace(/ /g, ''));
    expect(plain(decodeRequest(unhex(golden)))).toEqual(plain(command));
  });

  it.each(GOLDEN_REPLIES)('Response %s', (golden, reply) => {
    expect(hex(encodeResponse(reply))).toBe(golden.replace(/ /g, ''));
    expect(plain(decodeResponse(unhex(golden)))).toEqual(plain(reply));
  });
});

describe('decoding hostile payloads', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(KvProtocolError);
      return (error as KvProtocolError).code;
    }
    return 'decoded';
  };

  it('refuses a payload over the cap before decoding it', () => {
    const valid = encodeRequest({
      op: 'set',
      key: text('k'),
      value: new Uint8Array(100),
      ttlMs: 0,
    });
    expect(code(() => decodeRequest(valid, { maxBytes: valid.length }))).toBe('decoded');
    expect(code(() => decodeRequest(valid, { maxBytes: valid.length - 1 }))).toBe('TOO_LARGE');
  });

  it('names truncated, undecodable and empty messages', () => {
    expect(code(() => decodeRequest(unhex('1209 0a016b')))).toBe('UNDECODABLE');
    expect(code(() => decodeRequest(unhex('ff')))).toBe('UNDECODABLE');
    expect(code(() => decodeRequest(new Uint8Array(0)))).toBe('EMPTY');
    expect(code(() => decodeResponse(new Uint8Array(0)))).toBe('EMPTY');
    // A huge length prefix is checked against what is there, not allocated.
    expect(code(() => decodeRequest(unhex('12ffffffff0f')))).toBe('UNDECODABLE');
  });

  it('skips unknown fields and takes the last command of several, as proto3 says', () => {
    expect(decodeRequest(unhex('f80701 2200'))).toEqual({ op: 'stats' });
    expect(decodeRequest(unhex('2200 1a03 0a016b'))).toMatchObject({ op: 'delete' });
  });

  it('reads an error code it does not know as UNKNOWN', () => {
    expect(decodeResponse(unhex('3202 0863'))).toEqual({
      result: 'failure',
      code: 'UNKNOWN',
      message: '',
    });
  });

  it('refuses a counter outside the uint64 range', () => {
    expect(() =>
      encodeResponse({ result: 'stats', stats: { ...STATS_ZERO, hits: 2n ** 64n } }),
    ).toThrow(RangeError);
  });
});

// ---- properties ---------------------------------------------------------

const arbBytes = fc.uint8Array({ maxLength: 64 });
const arbU32 = fc.integer({ min: 0, max: 0xffff_ffff });
const arbU64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

const arbCommand: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ op: fc.constant('get' as const), key: arbBytes, waitMs: arbU32 }),
  fc.record({ op: fc.constant('set' as const), key: arbBytes, value: arbBytes, ttlMs: arbU32 }),
  fc.record({ op: fc.constant('delete' as const), key: arbBytes }),
  fc.constant({ op: 'stats' as const }),
);

const arbReply: fc.Arbitrary<KvReply> = fc.oneof(
  fc.record({ result: fc.constant('found' as const), value: arbBytes, ttlRemainingMs: arbU32 }),
  fc.constantFrom<KvReply>({ result: 'notFound' }, { result: 'stored' }, { result: 'deleted' }),
  fc.record({
    result: fc.constant('stats' as const),
    stats: fc.record({
      entries: arbU32,
      bytes: arbU64,
      maxEntries: arbU32,
      maxBytes: arbU64,
      hits: arbU64,
      misses: arbU64,
      sets: arbU64,
      deletes: arbU64,
      expired: arbU64,
      evicted: arbU64,
      connections: arbU32,
      handoffs: arbU64,
      uptimeMs: arbU64,
      waiting: arbU32,
    }),
  }),
  fc.record({
    result: fc.constant('failure' as const),
    code: fc.constantFrom(
      'MALFORMED_REQUEST' as const,
      'INVALID_KEY' as const,
      'INVALID_VALUE' as const,
      'INVALID_ARGUMENT' as const,
      'BUSY' as const,
      'TOO_LARGE' as const,
      'UNKNOWN' as const,
    ),
    message: fc.string({ maxLength: 40 }),
  }),
);

/** What outcome() may say: a command or a reply, else a KvProtocolError's code. */
const REQUEST_OUTCOME = /^(get|set|delete|stats|[A-Z_]+)$/;
const RESPONSE_OUTCOME = /^(found|notFound|stored|deleted|stats|failure|[A-Z_]+)$/;

/** Decodes, and says what happened; anything but a result or a KvProtocolError fails the property. */
function outcome(decode: () => { op: string } | { result: string }): string {
  try {
    const decoded = decode();
    return 'op' in decoded ? decoded.op : decoded.result;
  } catch (error) {
    if (error instanceof KvProtocolError) return error.code;
    throw error;
  }
}

function mutate(bytes: Uint8Array, mutations: [number, number][]): Uint8Array {
  const out = [...bytes];
  for (const [at, byte] of mutations) {
    const i = at % (out.length + 1);
    if (byte < 0) out.splice(i, 1);
    else if (byte < 256) out.splice(i, 0, byte);
    else if (i < out.length) out[i] = byte & 0xff;
  }
  return new Uint8Array(out);
}
const arbMutations = fc.array(fc.tuple(fc.nat(), fc.integer({ min: -1, max: 511 })), {
  minLength: 1,
  maxLength: 8,
});

describe('framed codec properties', () => {
  it('property: every command survives encode → decode', () => {
    fc.assert(
      fc.property(arbCommand, (command) => {
        expect(plain(decodeRequest(encodeRequest(command)))).toEqual(plain(command));
      }),
      { numRuns: 1000 },
    );
  });

  it('property: every reply survives encode → decode, 64-bit counters exactly', () => {
    fc.assert(
      fc.property(arbReply, (reply) => {
        expect(plain(decodeResponse(encodeResponse(reply)))).toEqual(plain(reply));
      }),
      { numRuns: 1000 },
    );
  });

  it('property: random bytes decode to a command or a typed error — never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(outcome(() => decodeRequest(bytes))).toMatch(REQUEST_OUTCOME);
        expect(outcome(() => decodeResponse(bytes))).toMatch(RESPONSE_OUTCOME);
      }),
      { numRuns: 3000 },
    );
  });

  it('property: mutated encodings decode to a result or a typed error', () => {
    fc.assert(
      fc.property(arbCommand, arbReply, arbMutations, (command, reply, mutations) => {
        expect(outcome(() => decodeRequest(mutate(encodeRequest(command), mutations)))).toMatch(
          REQUEST_OUTCOME,
        );
        expect(outcome(() => decodeResponse(mutate(encodeResponse(reply), mutations)))).toMatch(
          RESPONSE_OUTCOME,
        );
      }),
      { numRuns: 3000 },
    );
  });

  it('property: deep nesting of groups is a typed error, not a stack overflow', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20_000 }), (depth) => {
        // Field 15, wire type 3 (start group), over and over.
        expect(outcome(() => decodeRequest(new Uint8Array(depth).fill(0x7b)))).toBe('UNDECODABLE');
      }),
      { numRuns: 50 },
    );
  });
});
