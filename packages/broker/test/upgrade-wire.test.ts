// The upgrade channel's parser (src/upgrade/wire.ts) against what a
// hostile or broken peer can send: valid messages round-trip, and random
// bytes, mutated real messages, JSON of the wrong shape and wrong fd counts
// are refused with an UpgradeStateError and its code — never anything else.
import { arbMutated } from '@handoff/testkit/mutations';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UpgradeStateError } from '../src/upgrade/errors.js';
import {
  carriesFd,
  encodeUpgradeMessage,
  MAX_UPGRADE_FDS_PER_MESSAGE,
  MAX_UPGRADE_MESSAGE_BYTES,
  parseUpgradeMessage,
  type StateItem,
  stateParts,
  type UpgradeMessage,
} from '../src/upgrade/wire.js';

const items: StateItem[] = [
  { kind: 'listener', role: 'client', path: '/run/user/1000/handoff/broker.sock', owned: true },
  { kind: 'listener', role: 'control', path: '/run/user/1000/handoff/control.sock', owned: true },
  {
    kind: 'backend',
    key: 'echo@1.0.0',
    name: 'echo',
    version: '1.0.0',
    endpoint: '/run/user/1000/handoff/services/echo-1.0.0.sock',
    pid: 4242,
    identity: Buffer.from('identity').toString('base64'),
    startedAt: 1_700_000_000_000,
    routed: 17,
  },
  { kind: 'channel', backend: 'echo@1.0.0', registration: 'CgA=' },
  { kind: 'output', backend: 'echo@1.0.0', stream: 'stdout' },
  { kind: 'output', backend: 'echo@1.0.0', stream: 'stderr' },
  {
    kind: 'stored',
    backend: 'echo@1.0.0',
    name: 'line:1',
    metadata: '',
    depositedAt: 1_700_000_000_001,
    expiresAt: 1_700_000_060_001,
  },
];
const messages: UpgradeMessage[] = [
  { type: 'hello', pid: 100 },
  { type: 'state', last: true, items },
  { type: 'ready', pid: 101 },
  { type: 'commit' },
  { type: 'failed', reason: 'bad config' },
];
const fdsOf = (m: UpgradeMessage) => (m.type === 'state' ? m.items.filter(carriesFd).length : 0);

/** Parses, and tells what came of it: the message, or the refusal's code. Anything else throws. */
function outcome(bytes: Uint8Array, fds: number): UpgradeMessage | string {
  try {
    return parseUpgradeMessage(bytes, fds);
  } catch (error) {
    if (error instanceof UpgradeStateError) return error.code;
    throw error;
  }
}

describe('upgrade wire', () => {
  it('round-trips every message type', () => {
    for (const m of messages)
      expect(parseUpgradeMessage(encodeUpgradeMessage(m), fdsOf(m))).toEqual(m);
  });

  it('refuses a wrong fd count, another version, unknown types and kinds, out-of-range fields', () => {
    const state = messages[1]!;
    const json = (o: object) => Buffer.from(JSON.stringify(o));
    expect(outcome(encodeUpgradeMessage(state), fdsOf(state) - 1)).toBe('FD_MISMATCH');
    expect(outcome(encodeUpgradeMessage({ type: 'commit' }), 1)).toBe('FD_MISMATCH');
    expect(outcome(json({ v: 2, type: 'commit' }), 0)).toBe('BAD_VERSION');
    expect(outcome(json({ v: 1, type: 'shell' }), 0)).toBe('BAD_MESSAGE');
    expect(outcome(json([1]), 0)).toBe('BAD_MESSAGE');
    expect(outcome(json({ v: 1, type: 'hello', pid: -1 }), 0)).toBe('BAD_FIELD');
    expect(outcome(json({ v: 1, type: 'hello', pid: 1.5 }), 0)).toBe('BAD_FIELD');
    expect(outcome(json({ v: 1, type: 'state', last: true, items: [{ kind: 'bomb' }] }), 0)).toBe(
      'BAD_FIELD',
    );
    expect(
      outcome(
        json({
          v: 1,
          type: 'state',
          last: true,
          items: [{ kind: 'channel', backend: 'x', registration: 'not base64!' }],
        }),
        1,
      ),
    ).toBe('BAD_FIELD');
    expect(outcome(Buffer.alloc(MAX_UPGRADE_MESSAGE_BYTES + 1, 0x20), 0)).toBe('TOO_LARGE');
    expect(
      outcome(json({ v: 1, type: 'state', last: true, items: new Array(2000).fill(0) }), 0),
    ).toBe('TOO_LARGE');
  });

  it('splits a large state into parts of at most 253 fds, in order', () => {
    const many: StateItem[] = Array.from({ length: 600 }, (_, i) => ({
      kind: 'output',
      backend: `s${i}@1`,
      stream: 'stdout',
    }));
    const parts = stateParts(many);
    expect(parts.flat()).toEqual(many);
    for (const part of parts) {
      expect(part.filter(carriesFd).length).toBeLessThanOrEqual(MAX_UPGRADE_FDS_PER_MESSAGE);
      const bytes = encodeUpgradeMessage({ type: 'state', last: false, items: part });
      expect(bytes.length).toBeLessThanOrEqual(MAX_UPGRADE_MESSAGE_BYTES);
    }
  });

  it('refuses random bytes with a typed error only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.nat(300), (bytes, fds) => {
        const result = outcome(bytes, fds);
        expect(typeof result === 'string' ? result : result.type).toBeTypeOf('string');
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses mutated real messages with a typed error, or parses them to a checked message', () => {
    const corpus = Object.fromEntries(
      messages.map((m, i) => [`${m.type}${i}`, new Uint8Array(encodeUpgradeMessage(m))]),
    );
    fc.assert(
      fc.property(arbMutated(corpus, 4096), fc.nat(8), ({ bytes }, fds) => {
        const result = outcome(bytes, fds);
        if (typeof result === 'string') return;
        // Whatever parsed is a whole message again: it re-encodes and re-parses the same.
        expect(parseUpgradeMessage(encodeUpgradeMessage(result), fds)).toEqual(result);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses JSON of any shape with a typed error only', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(4), (value, fds) => {
        const bytes = Buffer.from(JSON.stringify({ v: 1, ...(value as object) }));
        const result = outcome(bytes, fds);
        expect(typeof result === 'string' ? result : result.type).toBeTypeOf('string');
      }),
      { numRuns: 2000 },
    );
  });
});
