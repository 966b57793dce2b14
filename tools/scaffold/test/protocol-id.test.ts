import {
  FIRST_PARTY_PAYLOAD_PROTOCOLS,
  isPrivateUseId,
  KNOWN_CONSUMER_PAYLOAD_PROTOCOLS,
} from '@handoff/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkProtocolId,
  FIRST_PICKED_ID,
  formatProtocolId,
  type ProtocolIdUse,
  parseProtocolId,
  pickFreeProtocolId,
  protocolIdsInSource,
} from '../src/protocol-id.js';
import { privateId } from './arbitraries.js';

const use = (id: number, app = 'demo-daemon', where = 'package.json'): ProtocolIdUse => ({
  id,
  app,
  where,
});

describe('parseProtocolId and formatProtocolId', () => {
  it('reads hex in either case and decimal', () => {
    expect(parseProtocolId('0xF0A1')).toBe(0xf0a1);
    expect(parseProtocolId('0Xf0a1')).toBe(0xf0a1);
    expect(parseProtocolId('61601')).toBe(0xf0a1);
    expect(formatProtocolId(0xf0a1)).toBe('0xF0A1');
    expect(formatProtocolId(0x7a)).toBe('0x007A');
  });

  it('round-trips every 16-bit id, in hex and in decimal', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (id) => {
        expect(parseProtocolId(formatProtocolId(id))).toBe(id);
        expect(parseProtocolId(String(id))).toBe(id);
      }),
    );
  });

  it.each([
    ['', /neither hex/],
    ['0x', /neither hex/],
    ['F0A1', /neither hex/],
    ['0xG0', /neither hex/],
    ['-1', /neither hex/],
    ['1e3', /neither hex/],
    [' 61601', /neither hex/],
    ['0x10000', /does not fit in 16 bits/],
    ['70000', /does not fit in 16 bits/],
  ])('rejects %j', (text, message) => {
    expect(() => parseProtocolId(text)).toThrow(message);
  });

  it('throws INVALID for anything that is not a number', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        fc.pre(!/^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(text));
        expect(() => parseProtocolId(text)).toThrow(expect.objectContaining({ code: 'INVALID' }));
      }),
    );
  });
});

describe('checkProtocolId', () => {
  it('accepts a free private-use id', () => {
    expect(() => checkProtocolId(0xf0a1, [use(0xf0d0)])).not.toThrow();
  });

  it('refuses an id an app uses, naming the app and where it says so', () => {
    expect(() =>
      checkProtocolId(0xf0d0, [
        use(0xf0d0),
        use(0xf0d0, 'demo-daemon', 'src/kv-protocol.ts'),
        use(0xf0d0, 'weather'),
      ]),
    ).toThrow(
      expect.objectContaining({
        code: 'IN_USE',
        message:
          'protocol id 0xF0D0 is already used by apps/demo-daemon (package.json, src/kv-protocol.ts), apps/weather (package.json); leave out --protocol-id to get a free one',
      }),
    );
  });

  it('refuses every id outside the private-use range as INVALID, registered ones included', () => {
    const outside = fc.oneof(
      fc.integer({ min: 0, max: 0xefff }),
      fc.constantFrom(...FIRST_PARTY_PAYLOAD_PROTOCOLS, ...KNOWN_CONSUMER_PAYLOAD_PROTOCOLS),
    );
    fc.assert(
      fc.property(outside, (id) => {
        expect(() => checkProtocolId(id, [])).toThrow(
          expect.objectContaining({
            code: 'INVALID',
            message: expect.stringContaining('not in the private-use range 0xF000–0xFFFF'),
          }),
        );
      }),
    );
  });
});

describe('pickFreeProtocolId', () => {
  it('starts at 0xF001 and skips what is used', () => {
    expect(pickFreeProtocolId([])).toBe(FIRST_PICKED_ID);
    expect(pickFreeProtocolId([use(0xf0d0)])).toBe(0xf001);
    expect(pickFreeProtocolId([use(0xf001), use(0xf002, 'x'), use(0xf004)])).toBe(0xf003);
  });

  it('picks the lowest free id: private, unused, and everything below it from 0xF001 is used', () => {
    fc.assert(
      fc.property(fc.array(privateId, { maxLength: 64 }), fc.nat(40), (ids, run) => {
        // A run of used ids from 0xF001, so "skipping" is exercised, plus random ones.
        const used = [...ids, ...Array.from({ length: run }, (_, i) => FIRST_PICKED_ID + i)];
        const picked = pickFreeProtocolId(used.map((id) => use(id)));
        expect(isPrivateUseId(picked)).toBe(true);
        expect(used).not.toContain(picked);
        expect(() =>
          checkProtocolId(
            picked,
            used.map((id) => use(id)),
          ),
        ).not.toThrow();
        for (let id = FIRST_PICKED_ID; id < picked; id++) expect(used).toContain(id);
      }),
    );
  });

  it('says so when the range is full', () => {
    const all = Array.from({ length: 0xffff - FIRST_PICKED_ID + 1 }, (_, i) =>
      use(FIRST_PICKED_ID + i),
    );
    expect(() => pickFreeProtocolId(all)).toThrow(expect.objectContaining({ code: 'EXHAUSTED' }));
  });
});

describe('protocolIdsInSource', () => {
  it('finds definePayloadProtocol calls with a literal id, hex or decimal', () => {
    const source = [
      "export const KV: PayloadProtocol = definePayloadProtocol('demo-kv', 0xf0d0);",
      'const other = definePayloadProtocol(\n  "other",\n  61601,\n);',
      '// definePayloadProtocol(name, id) in a comment has no literal id',
    ].join('\n');
    expect(protocolIdsInSource(source)).toEqual([0xf0d0, 0xf0a1]);
  });
});
