import { describe, expect, it } from 'vitest';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  CONTROL_PAYLOAD_PROTOCOL,
  createProtocolRegistry,
  definePayloadProtocol,
  FIRST_PARTY_PAYLOAD_PROTOCOLS,
  HANDOFF_PAYLOAD_PROTOCOL,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  isFirstParty,
  isPrivateUseId,
  isRegisteredConsumerId,
  KNOWN_CONSUMER_PAYLOAD_PROTOCOLS,
  RegistryError,
  SESSION_STREAM_PAYLOAD_PROTOCOL,
} from '../src/index.js';

function registryError(fn: () => unknown): RegistryError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    return error as RegistryError;
  }
  throw new Error('expected a RegistryError');
}

describe('payload-protocol ids', () => {
  it('has the first-party and known consumer ids of DESIGN §2.3', () => {
    expect([
      CONTROL_PAYLOAD_PROTOCOL,
      ADMIN_PAYLOAD_PROTOCOL,
      IDENTITY_PROBE_PAYLOAD_PROTOCOL,
      HANDOFF_PAYLOAD_PROTOCOL,
    ]).toEqual([0x0000, 0xad01, 0xb232, 0xd0ff]);
    expect(SESSION_STREAM_PAYLOAD_PROTOCOL).toBe(0x5350);
    expect(FIRST_PARTY_PAYLOAD_PROTOCOLS).toEqual([0x0000, 0xad01, 0xb232, 0xd0ff]);
    expect(KNOWN_CONSUMER_PAYLOAD_PROTOCOLS).toEqual([0x7a63, 0x7c4c, 0x7eb1]);
  });

  it('classifies ranges at their edges', () => {
    for (const id of [0x0000, 0x6fff, 0xad01, 0xb232, 0xd0ff, 0x5350])
      expect(isFirstParty(id), id.toString(16)).toBe(true);
    for (const id of [0x7000, 0x7eff, 0x7f00, 0xefff, 0xf000, 0xffff])
      expect(isFirstParty(id), id.toString(16)).toBe(false);
    expect([0x6fff, 0x7000, 0x7eff, 0x7f00].map(isRegisteredConsumerId)).toEqual([
      false,
      true,
      true,
      false,
    ]);
    expect([0xefff, 0xf000, 0xffff, 0x10000].map(isPrivateUseId)).toEqual([
      false,
      true,
      true,
      false,
    ]);
    expect(isPrivateUseId(0xf000 + 0.5)).toBe(false);
  });
});

describe('definePayloadProtocol', () => {
  it('accepts consumer and private-use ids', () => {
    expect(definePayloadProtocol('demo-kv', 0xf001)).toEqual({ name: 'demo-kv', id: 0xf001 });
    expect(definePayloadProtocol('cache', 0x7a63).id).toBe(0x7a63);
  });

  it('rejects a first-party collision', () => {
    for (const id of [0x0000, 0xb232, 0xd0ff, 0xad01, 0x1234]) {
      const error = registryError(() => definePayloadProtocol('x', id));
      expect(error.code).toBe('FIRST_PARTY_COLLISION');
      expect(error.id).toBe(id);
    }
  });

  it('rejects ids outside the consumer and private ranges', () => {
    for (const id of [0x7f00, 0xefff, 0x10000, -1, 1.5, Number.NaN]) {
      expect(registryError(() => definePayloadProtocol('x', id)).code).toBe('ID_OUT_OF_RANGE');
    }
  });

  it('rejects unusable names', () => {
    for (const name of ['', 'Upper', '1abc', 'a b', 'x'.repeat(65)]) {
      expect(registryError(() => definePayloadProtocol(name, 0xf000)).code).toBe('INVALID_NAME');
    }
  });
});

describe('createProtocolRegistry', () => {
  it('registers protocols and looks them up by id and name', () => {
    const a = definePayloadProtocol('a', 0xf002);
    const b = definePayloadProtocol('b', 0x7001);
    const registry = createProtocolRegistry([a]).register(b);
    expect(registry.size).toBe(2);
    expect(registry.has(0xf002)).toBe(true);
    expect(registry.get(0x7001)).toBe(b);
    expect(registry.byName('a')).toBe(a);
    expect(registry.ids()).toEqual([0x7001, 0xf002]);
    expect([...registry]).toEqual([a, b]);
  });

  it('rejects duplicate ids and names, and hand-built invalid entries', () => {
    const registry = createProtocolRegistry([definePayloadProtocol('a', 0xf002)]);
    expect(registryError(() => registry.register(definePayloadProtocol('z', 0xf002))).code).toBe(
      'DUPLICATE_ID',
    );
    expect(registryError(() => registry.register(definePayloadProtocol('a', 0xf003))).code).toBe(
      'DUPLICATE_NAME',
    );
    expect(registryError(() => registry.register({ name: 'p', id: 0xb232 })).code).toBe(
      'FIRST_PARTY_COLLISION',
    );
    expect(registry.size).toBe(1);
  });

  it('keeps registries independent (no shared module state)', () => {
    const one = createProtocolRegistry([definePayloadProtocol('a', 0xf002)]);
    const two = createProtocolRegistry();
    expect(one.has(0xf002)).toBe(true);
    expect(two.has(0xf002)).toBe(false);
    two.register(definePayloadProtocol('a', 0xf002));
  });
});
