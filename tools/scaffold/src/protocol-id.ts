// A new daemon's payload protocol id, sans-io: parsing what the user typed,
// finding the ids apps already declare in their sources, checking an id
// against the registry and those uses, and picking the lowest free one.
// Reading the apps' files is workspace.ts's job.

import { formatProtocolId } from '@handoff/create-daemon/rename';
import {
  definePayloadProtocol,
  FIRST_PARTY_PAYLOAD_PROTOCOLS,
  isPrivateUseId,
  KNOWN_CONSUMER_PAYLOAD_PROTOCOLS,
  PRIVATE_USE_RANGE,
} from '@handoff/protocol';

/**
 * Where picking starts. 0xF000, the first private-use id, is the one people
 * reach for in experiments and examples; a generated daemon that took it
 * would collide with the first of those it met.
 */
export const FIRST_PICKED_ID = 0xf001;

/** One app's claim on an id: `where` is the file that says so, relative to the app. */
export interface ProtocolIdUse {
  readonly id: number;
  readonly app: string;
  readonly where: string;
}

export class ProtocolIdError extends Error {
  override readonly name = 'ProtocolIdError';
  /** INVALID: not an id we may use at all (a usage error). IN_USE: taken (a refusal). */
  readonly code: 'INVALID' | 'IN_USE' | 'EXHAUSTED';
  constructor(code: ProtocolIdError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

// Spelled as create-daemon spells it, so both scaffolds print ids alike.
export { formatProtocolId };

/** Hex with 0x (either case) or plain decimal; anything else is INVALID. */
export function parseProtocolId(text: string): number {
  const hex = /^0[xX]([0-9a-fA-F]+)$/.exec(text);
  const value = hex ? Number.parseInt(hex[1]!, 16) : /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(value)) {
    throw new ProtocolIdError(
      'INVALID',
      `protocol id ${JSON.stringify(text)} is neither hex (0xF0A1) nor decimal (61601)`,
    );
  }
  if (value > 0xffff) {
    throw new ProtocolIdError('INVALID', `protocol id ${text} does not fit in 16 bits`);
  }
  return value;
}

const range = `${formatProtocolId(PRIVATE_USE_RANGE.min)}–${formatProtocolId(PRIVATE_USE_RANGE.max)}`;

/**
 * Throws unless `id` is one a new daemon may take: private use, accepted by
 * definePayloadProtocol (the check the daemon itself runs at import), no
 * first-party or registered consumer id, and declared by no app.
 */
export function checkProtocolId(id: number, uses: readonly ProtocolIdUse[]): void {
  if (!isPrivateUseId(id)) {
    throw new ProtocolIdError(
      'INVALID',
      `protocol id ${formatProtocolId(id)} is not in the private-use range ${range}; a new daemon takes a private-use id (consumer ids are registered with the project)`,
    );
  }
  if (FIRST_PARTY_PAYLOAD_PROTOCOLS.includes(id) || KNOWN_CONSUMER_PAYLOAD_PROTOCOLS.includes(id)) {
    throw new ProtocolIdError('IN_USE', `protocol id ${formatProtocolId(id)} is registered`);
  }
  try {
    definePayloadProtocol('scaffold-check', id);
  } catch (error) {
    throw new ProtocolIdError('INVALID', (error as Error).message);
  }
  const taken = uses.filter((use) => use.id === id);
  if (taken.length > 0) {
    const apps = [...new Set(taken.map((use) => use.app))];
    const by = apps
      .map((app) => {
        const where = taken.filter((use) => use.app === app).map((use) => use.where);
        return `apps/${app} (${where.join(', ')})`;
      })
      .join(', ');
    throw new ProtocolIdError(
      'IN_USE',
      `protocol id ${formatProtocolId(id)} is already used by ${by}; leave out --protocol-id to get a free one`,
    );
  }
}

/** The lowest id from FIRST_PICKED_ID up that checkProtocolId accepts. */
export function pickFreeProtocolId(uses: readonly ProtocolIdUse[]): number {
  const taken = new Set(uses.map((use) => use.id));
  for (let id = FIRST_PICKED_ID; id <= PRIVATE_USE_RANGE.max; id++) {
    if (
      !taken.has(id) &&
      !FIRST_PARTY_PAYLOAD_PROTOCOLS.includes(id) &&
      !KNOWN_CONSUMER_PAYLOAD_PROTOCOLS.includes(id)
    ) {
      return id;
    }
  }
  throw new ProtocolIdError(
    'EXHAUSTED',
    `every private-use protocol id from ${formatProtocolId(FIRST_PICKED_ID)} up is taken`,
  );
}

/**
 * `definePayloadProtocol('name', 0xF0D0)` calls with a literal id, as an
 * app's source declares its protocol. A second witness beside the
 * package.json metadata: an app whose metadata went stale, or that has
 * none, still has its id found.
 */
export function protocolIdsInSource(source: string): number[] {
  const call =
    /definePayloadProtocol\(\s*(['"`])[^'"`]*\1\s*,\s*(0[xX][0-9a-fA-F]+|[0-9]+)\s*,?\s*\)/g;
  return [...source.matchAll(call)].map((match) => parseProtocolId(match[2]!));
}
