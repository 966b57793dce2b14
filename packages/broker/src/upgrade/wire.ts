// The upgrade channel's messages (one seqpacket message each, JSON with a
// wire version, fds attached in item order) and their hostile-safe parser:
// a successor may be a different install, so nothing it sends is trusted
// until checked here. Sending and fd ownership are handover.ts's and takeover.ts's.
import { UpgradeStateError } from './errors.js';

/** Bumped on any incompatible change; both sides refuse another. */
export const UPGRADE_WIRE_VERSION = 1;
/** The largest message either side sends or reads. */
export const MAX_UPGRADE_MESSAGE_BYTES = 256 * 1024;
/** SCM_MAX_FD: at most this many fds ride one message. */
export const MAX_UPGRADE_FDS_PER_MESSAGE = 253;
/** Items per state message, and state messages per upgrade. */
export const MAX_STATE_ITEMS = 1024;
export const MAX_STATE_PARTS = 256;
/** Paths, keys, names and base64 blobs are bounded too. */
const MAX_STRING = 16 * 1024;
const MAX_REASON = 4096;

/** A listening socket: the clients' (`client`) or the daemons' control socket (`control`). */
export interface ListenerItem {
  kind: 'listener';
  role: 'client' | 'control';
  path: string;
  /** Bound by a broker (its file is the successor's to remove), not by a service manager. */
  owned: boolean;
}

/** A daemon the broker runs or adopted, as the successor records it (registry.adoptRunning). */
export interface BackendItem {
  kind: 'backend';
  key: string;
  name: string;
  version: string;
  endpoint: string;
  pid: number;
  /** Its verified DaemonProcess, protobuf-encoded, base64. */
  identity: string;
  startedAt: number;
  routed: number;
}

/** A backend's persistent control channel (fd), with the registration it sent (protobuf, base64). */
export interface ChannelItem {
  kind: 'channel';
  backend: string;
  registration: string;
}

/** The read end of a daemon's stdout or stderr pipe (fd). */
export interface OutputItem {
  kind: 'output';
  backend: string;
  stream: 'stdout' | 'stderr';
}

/** One fd-store entry (fd) of a service key: its name, metadata (base64), deposit and expiry times. */
export interface StoredItem {
  kind: 'stored';
  backend: string;
  name: string;
  metadata: string;
  depositedAt: number;
  expiresAt: number;
}

export type StateItem = ListenerItem | BackendItem | ChannelItem | OutputItem | StoredItem;

export type UpgradeMessage =
  /** Successor → old: config loaded, send the state. */
  | { type: 'hello'; pid: number }
  /** Old → successor: part of the state; `last` on the final part. */
  | { type: 'state'; last: boolean; items: StateItem[] }
  /** Successor → old: everything adopted, waiting for commit. */
  | { type: 'ready'; pid: number }
  /** Old → successor: the old broker let go; start accepting. */
  | { type: 'commit' }
  /** Successor → old: it cannot take over, and why. */
  | { type: 'failed'; reason: string };

/** Whether an item carries one fd (in the message's fd list, in item order). */
export function carriesFd(item: StateItem): boolean {
  return item.kind !== 'backend';
}

export function encodeUpgradeMessage(message: UpgradeMessage): Buffer {
  const bytes = Buffer.from(JSON.stringify({ v: UPGRADE_WIRE_VERSION, ...message }), 'utf8');
  if (bytes.length > MAX_UPGRADE_MESSAGE_BYTES)
    throw new UpgradeStateError(
      'TOO_LARGE',
      `upgrade message of ${bytes.length} bytes over ${MAX_UPGRADE_MESSAGE_BYTES}`,
    );
  return bytes;
}

/**
 * Parses one message that arrived with `fdCount` fds. Throws
 * UpgradeStateError for anything malformed; never anything else. The fds
 * stay the caller's to close either way.
 */
export function parseUpgradeMessage(data: Uint8Array, fdCount: number): UpgradeMessage {
  if (data.length > MAX_UPGRADE_MESSAGE_BYTES)
    throw new UpgradeStateError('TOO_LARGE', `message of ${data.length} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.length).toString('utf8'));
  } catch {
    throw new UpgradeStateError('BAD_MESSAGE', 'not JSON');
  }
  const o = record(raw, 'message');
  if (o.v !== UPGRADE_WIRE_VERSION)
    throw new UpgradeStateError(
      'BAD_VERSION',
      `wire version ${String(o.v)} is not ${UPGRADE_WIRE_VERSION}`,
    );
  const type = o.type;
  if (type !== 'state' && fdCount !== 0)
    throw new UpgradeStateError('FD_MISMATCH', `${String(type)} carries ${fdCount} fds`);
  switch (type) {
    case 'hello':
    case 'ready':
      return { type, pid: integer(o.pid, 'pid', 1, 2 ** 31 - 1) };
    case 'commit':
      return { type };
    case 'failed':
      return { type, reason: string(o.reason, 'reason', MAX_REASON) };
    case 'state':
      return parseState(o, fdCount);
    default:
      throw new UpgradeStateError('BAD_MESSAGE', `unknown message type ${JSON.stringify(type)}`);
  }
}

function parseState(o: Record<string, unknown>, fdCount: number): UpgradeMessage {
  if (typeof o.last !== 'boolean') throw new UpgradeStateError('BAD_FIELD', 'last: not a boolean');
  if (!Array.isArray(o.items)) throw new UpgradeStateError('BAD_FIELD', 'items: not an array');
  if (o.items.length > MAX_STATE_ITEMS)
    throw new UpgradeStateError('TOO_LARGE', `${o.items.length} items`);
  const items = o.items.map((item, i) => parseItem(item, `items[${i}]`));
  const withFd = items.filter(carriesFd).length;
  if (withFd !== fdCount || fdCount > MAX_UPGRADE_FDS_PER_MESSAGE)
    throw new UpgradeStateError('FD_MISMATCH', `${withFd} items carry an fd, ${fdCount} fds came`);
  return { type: 'state', last: o.last, items };
}

function parseItem(raw: unknown, at: string): StateItem {
  const o = record(raw, at);
  switch (o.kind) {
    case 'listener': {
      const role = o.role;
      if (role !== 'client' && role !== 'control')
        throw new UpgradeStateError('BAD_FIELD', `${at}.role`);
      if (typeof o.owned !== 'boolean') throw new UpgradeStateError('BAD_FIELD', `${at}.owned`);
      return { kind: 'listener', role, path: string(o.path, `${at}.path`), owned: o.owned };
    }
    case 'backend':
      return {
        kind: 'backend',
        key: string(o.key, `${at}.key`),
        name: string(o.name, `${at}.name`),
        version: string(o.version, `${at}.version`),
        endpoint: string(o.endpoint, `${at}.endpoint`),
        pid: integer(o.pid, `${at}.pid`, 1, 2 ** 31 - 1),
        identity: base64(o.identity, `${at}.identity`),
        startedAt: integer(o.startedAt, `${at}.startedAt`, 0, Number.MAX_SAFE_INTEGER),
        routed: integer(o.routed, `${at}.routed`, 0, Number.MAX_SAFE_INTEGER),
      };
    case 'channel':
      return {
        kind: 'channel',
        backend: string(o.backend, `${at}.backend`),
        registration: base64(o.registration, `${at}.registration`),
      };
    case 'output': {
      const stream = o.stream;
      if (stream !== 'stdout' && stream !== 'stderr')
        throw new UpgradeStateError('BAD_FIELD', `${at}.stream`);
      return { kind: 'output', backend: string(o.backend, `${at}.backend`), stream };
    }
    case 'stored':
      return {
        kind: 'stored',
        backend: string(o.backend, `${at}.backend`),
        name: string(o.name, `${at}.name`),
        metadata: base64(o.metadata, `${at}.metadata`),
        depositedAt: integer(o.depositedAt, `${at}.depositedAt`, 0, Number.MAX_SAFE_INTEGER),
        expiresAt: integer(o.expiresAt, `${at}.expiresAt`, 0, Number.MAX_SAFE_INTEGER),
      };
    default:
      throw new UpgradeStateError('BAD_FIELD', `${at}.kind ${JSON.stringify(o.kind)}`);
  }
}

function record(raw: unknown, at: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new UpgradeStateError('BAD_MESSAGE', `${at}: not an object`);
  return raw as Record<string, unknown>;
}

function string(raw: unknown, at: string, max = MAX_STRING): string {
  if (typeof raw !== 'string') throw new UpgradeStateError('BAD_FIELD', `${at}: not a string`);
  if (raw.length > max) throw new UpgradeStateError('TOO_LARGE', `${at}: ${raw.length} chars`);
  return raw;
}

function integer(raw: unknown, at: string, min: number, max: number): number {
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max)
    throw new UpgradeStateError('BAD_FIELD', `${at}: not an integer in ${min}..${max}`);
  return raw;
}

function base64(raw: unknown, at: string): string {
  const text = string(raw, at);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0)
    throw new UpgradeStateError('BAD_FIELD', `${at}: not base64`);
  return text;
}

const ITEMS_PER_PART = 32;

/** Splits items into state messages of at most MAX_UPGRADE_FDS_PER_MESSAGE fds and MAX_STATE_ITEMS items. */
export function stateParts(items: readonly StateItem[]): StateItem[][] {
  const parts: StateItem[][] = [];
  let current: StateItem[] = [];
  let fds = 0;
  // Bytes are bounded by items: 32 items of the largest real item (a 4 KiB
  // fd-store metadata blob, ~5.5 KiB in base64) stay well under the byte cap.
  for (const item of items) {
    const needs = carriesFd(item) ? 1 : 0;
    if (current.length >= ITEMS_PER_PART || fds + needs > MAX_UPGRADE_FDS_PER_MESSAGE) {
      parts.push(current);
      current = [];
      fds = 0;
    }
    current.push(item);
    fds += needs;
  }
  parts.push(current);
  return parts;
}
