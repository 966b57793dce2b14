// Payload-protocol ids (DESIGN §2.3): which ids are ours, which belong to
// registered consumers, which are free for private use, and a value-based
// registry a daemon fills with the protocols it serves. Nothing here is
// module-level mutable state: two copies of this package never disagree.
import { RegistryError } from './errors.js';

/** First-party payload protocols. */
export const CONTROL_PAYLOAD_PROTOCOL = 0x0000;
export const ADMIN_PAYLOAD_PROTOCOL = 0xad01;
export const IDENTITY_PROBE_PAYLOAD_PROTOCOL = 0xb232;
export const HANDOFF_PAYLOAD_PROTOCOL = 0xd0ff;
/** Reserved for a later session stream; not served in v1. */
export const SESSION_STREAM_PAYLOAD_PROTOCOL = 0x5350;

export const FIRST_PARTY_PAYLOAD_PROTOCOLS: readonly number[] = Object.freeze([
  CONTROL_PAYLOAD_PROTOCOL,
  ADMIN_PAYLOAD_PROTOCOL,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  HANDOFF_PAYLOAD_PROTOCOL,
]);

/** Consumer ids registered with the reference project. */
export const KNOWN_CONSUMER_PAYLOAD_PROTOCOLS: readonly number[] = Object.freeze([
  0x7a63, 0x7c4c, 0x7eb1,
]);

export interface IdRange {
  readonly min: number;
  readonly max: number;
}

export const FIRST_PARTY_RANGE: IdRange = Object.freeze({ min: 0x0000, max: 0x6fff });
export const CONSUMER_RANGE: IdRange = Object.freeze({ min: 0x7000, max: 0x7eff });
export const RESERVED_RANGE: IdRange = Object.freeze({ min: 0x7f00, max: 0xefff });
export const PRIVATE_USE_RANGE: IdRange = Object.freeze({ min: 0xf000, max: 0xffff });

const inRange = (id: number, range: IdRange) =>
  Number.isInteger(id) && id >= range.min && id <= range.max;

/** True for the first-party ids and anything in the first-party range. */
export function isFirstParty(id: number): boolean {
  return FIRST_PARTY_PAYLOAD_PROTOCOLS.includes(id) || inRange(id, FIRST_PARTY_RANGE);
}

/** True for ids in the registered-consumer range (0x7000–0x7EFF). */
export function isRegisteredConsumerId(id: number): boolean {
  return inRange(id, CONSUMER_RANGE);
}

/** True for ids in the private-use range (0xF000–0xFFFF). */
export function isPrivateUseId(id: number): boolean {
  return inRange(id, PRIVATE_USE_RANGE);
}

export interface PayloadProtocol {
  readonly name: string;
  readonly id: number;
}

const NAME = /^[a-z][a-z0-9_.-]{0,63}$/;

function hex(id: number): string {
  return `0x${id.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Declares a daemon's own payload protocol. The id must be a consumer or
 * private-use id and never first-party; the name is for logs and errors.
 */
export function definePayloadProtocol(name: string, id: number): PayloadProtocol {
  if (!NAME.test(name)) {
    throw new RegistryError(
      'INVALID_NAME',
      `payload protocol name ${JSON.stringify(name)} must match ${NAME.source}`,
      id,
    );
  }
  if (isFirstParty(id) && Number.isInteger(id) && id >= 0) {
    throw new RegistryError(
      'FIRST_PARTY_COLLISION',
      `payload protocol ${hex(id)} (${name}) collides with the first-party ids`,
      id,
    );
  }
  if (!isRegisteredConsumerId(id) && !isPrivateUseId(id)) {
    throw new RegistryError(
      'ID_OUT_OF_RANGE',
      `payload protocol id ${Number.isInteger(id) && id >= 0 ? hex(id) : String(id)} (${name}) must be in ${hex(CONSUMER_RANGE.min)}–${hex(CONSUMER_RANGE.max)} or ${hex(PRIVATE_USE_RANGE.min)}–${hex(PRIVATE_USE_RANGE.max)}`,
      id,
    );
  }
  return Object.freeze({ name, id });
}

export interface ProtocolRegistry {
  /** Adds protocols; throws DUPLICATE_ID / DUPLICATE_NAME on a clash. */
  register(...protocols: PayloadProtocol[]): ProtocolRegistry;
  has(id: number): boolean;
  get(id: number): PayloadProtocol | undefined;
  byName(name: string): PayloadProtocol | undefined;
  /** Ids in ascending order. */
  ids(): number[];
  [Symbol.iterator](): Iterator<PayloadProtocol>;
  readonly size: number;
}

/** A registry of the protocols one daemon (or client) speaks. */
export function createProtocolRegistry(
  protocols: Iterable<PayloadProtocol> = [],
): ProtocolRegistry {
  const byId = new Map<number, PayloadProtocol>();
  const names = new Map<string, PayloadProtocol>();
  const registry: ProtocolRegistry = {
    register(...added) {
      for (const protocol of added) {
        // Re-validate: a hand-built object must obey the same rules, and is
        // kept as a frozen copy so later mutation cannot bypass them.
        const valid = definePayloadProtocol(protocol.name, protocol.id);
        const checked = Object.isFrozen(protocol) ? protocol : valid;
        const existing = byId.get(checked.id);
        if (existing) {
          throw new RegistryError(
            'DUPLICATE_ID',
            `payload protocol ${hex(checked.id)} is already registered as ${existing.name}`,
            checked.id,
          );
        }
        if (names.has(checked.name)) {
          throw new RegistryError(
            'DUPLICATE_NAME',
            `a payload protocol named ${checked.name} is already registered`,
            checked.id,
          );
        }
        byId.set(checked.id, checked);
        names.set(checked.name, checked);
      }
      return registry;
    },
    has: (id) => byId.has(id),
    get: (id) => byId.get(id),
    byName: (name) => names.get(name),
    ids: () => [...byId.keys()].sort((a, b) => a - b),
    [Symbol.iterator]: () => byId.values(),
    get size() {
      return byId.size;
    },
  };
  registry.register(...protocols);
  return registry;
}
