// The messages between a dispatcher master and its workers, one per
// SOCK_SEQPACKET message on their private channel: encoders and strict
// decoders. Sans-io — bytes in, typed values out; every size is checked
// before anything is allocated and every fault is a DispatchWireError. It
// knows nothing of processes, sockets or scheduling.
//
// Every message starts with [u8 type][u8 version][u16 little-endian field];
// integers are little-endian.
//   master → worker
//     HELLO    0x01  [u16 json length] JSON WorkerHello (≤ 16 KiB)
//     DISPATCH 0x02  [u16 count] count × [u32 id low][u16 id high][u8 listener][u8 0]
//                    with exactly `count` fds (1..253), one per record, in order
//     STOP     0x03  [u16 0][u32 deadline ms]
//   worker → master
//     READY    0x81  [u16 0][u32 pid]
//     REPORT   0x82  [u16 n] n × [u8 kind][u8 reason][u16 0][u32 count]
// Per-connection metadata is 8 bytes: what is the same for every connection
// of a listener (family, protocol, local address) travels once, in HELLO.
import { BackendSdkError } from '../errors.js';

export const DISPATCH_WIRE_VERSION = 1;
/** SCM_MAX_FD: the kernel refuses more fds in one message (DESIGN §3). */
export const MAX_FDS_PER_DISPATCH = 253;
export const MAX_HELLO_JSON_BYTES = 16 * 1024;
export const MAX_LISTENERS = 64;
/** Report entries per message; a worker never needs more than a handful. */
export const MAX_REPORT_ENTRIES = 256;
/** Connection ids are 48-bit: unique for the life of a dispatcher at any accept rate. */
export const MAX_CONNECTION_ID = 2 ** 48 - 1;

export const MessageType = {
  HELLO: 0x01,
  DISPATCH: 0x02,
  STOP: 0x03,
  READY: 0x81,
  REPORT: 0x82,
} as const;

const HEADER = 4;
const RECORD = 8;
const ENTRY = 8;

/** What a worker learns once, at start. */
export interface WorkerHello {
  /** The worker's slot (0..workers-1); a respawned worker takes over its slot. */
  slot: number;
  /** How many workers this slot had before this one (0 for the first). */
  generation: number;
  /** How long to drain when the master disappears without a STOP. */
  drainDeadlineMs: number;
  endpoints: DispatchEndpoint[];
}

/** A listening socket of the master: the session metadata its connections share. */
export type DispatchEndpoint =
  | {
      index: number;
      transport: 'tcp';
      /** Socket family of every connection accepted on it. */
      family: 'inet' | 'inet6';
      /** The address it is bound to (a connection's local address, unless it is a wildcard). */
      address: string;
      port: number;
      /**
       * The listener has TCP_NODELAY, so every connection accepted on it has
       * it too (Linux and the BSDs copy it on accept): the worker's sockets
       * record it, and `setNoDelay(true)` on them makes no system call.
       */
      noDelay: boolean;
    }
  | { index: number; transport: 'unix'; family: 'unix'; path: string };

/** Report entry kinds, worker → master, in the order things happened. */
export const ReportKind = {
  /** `count` dispatch messages, oldest first, whose connections the worker now owns. */
  ADOPTED: 1,
  /** `count` dispatch messages that never reached the worker whole; the master still owns them. */
  DROPPED: 2,
  /** `count` adopted connections that have closed. */
  CLOSED: 3,
  /** `count` connections the worker received but could not serve (it closed them). */
  FAILED: 4,
} as const;
export type ReportKind = (typeof ReportKind)[keyof typeof ReportKind];

/** Why a dispatch message was dropped (DROPPED) or a connection failed (FAILED). */
export const DropReason = {
  NONE: 0,
  /** MSG_CTRUNC: the kernel could not install the fds (worker's fd table full). */
  CONTROL_TRUNCATED: 1,
  TOO_MANY_FDS: 2,
  DATA_TRUNCATED: 3,
  /** The message reached the worker but did not decode. */
  MALFORMED: 4,
  /** net.Socket refused the fd. */
  ADOPT_FAILED: 5,
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

export interface ReportEntry {
  kind: ReportKind;
  reason: DropReason;
  count: number;
}

export type MasterMessage =
  | { type: 'hello'; hello: WorkerHello }
  /** Records are read with dispatchRecordId / dispatchRecordListener (no per-record objects). */
  | { type: 'dispatch'; count: number; data: Uint8Array }
  | { type: 'stop'; deadlineMs: number };

export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'report'; entries: ReportEntry[] };

export type DispatchWireErrorCode =
  /** Shorter than the 4-byte header. */
  | 'TRUNCATED'
  /** A message type this side never receives. */
  | 'UNKNOWN_TYPE'
  /** A wire version other than DISPATCH_WIRE_VERSION. */
  | 'UNSUPPORTED_VERSION'
  /** The length does not match what the header announces. */
  | 'BAD_LENGTH'
  /** The number of fds does not match the message (only DISPATCH carries fds). */
  | 'FD_COUNT'
  /** HELLO is not UTF-8 JSON of the expected shape. */
  | 'BAD_HELLO'
  /** A REPORT entry with an unknown kind or reason. */
  | 'BAD_REPORT'
  /** Over a size limit (hello JSON, report entries). */
  | 'TOO_LARGE'
  /** A byte the format fixes at 0 is not 0 (a layout this side does not know). */
  | 'RESERVED';

export class DispatchWireError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:DispatchWireError';
  override readonly name = 'DispatchWireError';
  declare readonly code: DispatchWireErrorCode;
  constructor(code: DispatchWireErrorCode, message: string) {
    super(code, message);
  }
}

function header(data: Uint8Array, fdCount: number, allowFds: boolean): [number, number, number] {
  if (data.length < HEADER) {
    throw new DispatchWireError('TRUNCATED', `message of ${data.length} bytes (header is 4)`);
  }
  const type = data[0] as number;
  const version = data[1] as number;
  if (!allowFds && fdCount !== 0) {
    throw new DispatchWireError('FD_COUNT', `message type 0x${hex(type)} carried ${fdCount} fds`);
  }
  if (version !== DISPATCH_WIRE_VERSION) {
    throw new DispatchWireError(
      'UNSUPPORTED_VERSION',
      `wire version ${version} (this side speaks ${DISPATCH_WIRE_VERSION})`,
    );
  }
  return [type, version, (data[2] as number) | ((data[3] as number) << 8)];
}

function u32(data: Uint8Array, at: number): number {
  return (
    ((data[at] as number) |
      ((data[at + 1] as number) << 8) |
      ((data[at + 2] as number) << 16) |
      ((data[at + 3] as number) << 24)) >>>
    0
  );
}

function putU16(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
}

function putU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
  out[at + 2] = (v >>> 16) & 0xff;
  out[at + 3] = (v >>> 24) & 0xff;
}

function exactLength(data: Uint8Array, want: number, what: string): void {
  if (data.length !== want) {
    throw new DispatchWireError('BAD_LENGTH', `${what}: ${data.length} bytes, expected ${want}`);
  }
}

const hex = (n: number) => n.toString(16).padStart(2, '0');

/**
 * Bytes the format fixes at 0 must be 0: otherwise two messages mean the
 * same thing, and a peer that gave them a meaning would be misread silently.
 */
function reserved(value: number, what: string): void {
  if (value !== 0) {
    throw new DispatchWireError('RESERVED', `${what} is ${value}, must be 0`);
  }
}

// --- master → worker --------------------------------------------------------

export function encodeHello(hello: WorkerHello): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(hello));
  if (json.length > MAX_HELLO_JSON_BYTES) {
    throw new DispatchWireError(
      'TOO_LARGE',
      `hello of ${json.length} bytes exceeds ${MAX_HELLO_JSON_BYTES}`,
    );
  }
  const out = new Uint8Array(HEADER + json.length);
  out[0] = MessageType.HELLO;
  out[1] = DISPATCH_WIRE_VERSION;
  putU16(out, 2, json.length);
  out.set(json, HEADER);
  return out;
}

/** Bytes of a DISPATCH message of `count` records. */
export function dispatchMessageLength(count: number): number {
  return HEADER + count * RECORD;
}

/**
 * Writes a DISPATCH header for `count` records into `out` (which must hold
 * dispatchMessageLength(count) bytes); fill records with putDispatchRecord.
 */
export function putDispatchHeader(out: Uint8Array, count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_FDS_PER_DISPATCH) {
    throw new RangeError(`dispatch of ${count} connections (1..${MAX_FDS_PER_DISPATCH})`);
  }
  out[0] = MessageType.DISPATCH;
  out[1] = DISPATCH_WIRE_VERSION;
  putU16(out, 2, count);
}

export function putDispatchRecord(out: Uint8Array, i: number, id: number, listener: number): void {
  const at = HEADER + i * RECORD;
  putU32(out, at, id % 2 ** 32);
  putU16(out, at + 4, Math.floor(id / 2 ** 32) & 0xffff);
  out[at + 6] = listener;
  out[at + 7] = 0;
}

export function encodeStop(deadlineMs: number): Uint8Array {
  const out = new Uint8Array(HEADER + 4);
  out[0] = MessageType.STOP;
  out[1] = DISPATCH_WIRE_VERSION;
  putU32(out, HEADER, Math.max(0, Math.min(Math.round(deadlineMs), 0xffffffff)));
  return out;
}

/** Decodes one message as a worker receives it, with the number of fds that came with it. */
export function decodeMasterMessage(data: Uint8Array, fdCount: number): MasterMessage {
  const [type, , field] = header(data, fdCount, true);
  switch (type) {
    case MessageType.DISPATCH: {
      if (field < 1 || field > MAX_FDS_PER_DISPATCH) {
        throw new DispatchWireError(
          'BAD_LENGTH',
          `dispatch of ${field} connections (1..${MAX_FDS_PER_DISPATCH})`,
        );
      }
      exactLength(data, HEADER + field * RECORD, 'dispatch');
      if (fdCount !== field) {
        throw new DispatchWireError(
          'FD_COUNT',
          `dispatch of ${field} connections came with ${fdCount} fds`,
        );
      }
      for (let i = 0; i < field; i++) {
        reserved(data[HEADER + i * RECORD + 7] as number, `dispatch record ${i}'s last byte`);
      }
      return { type: 'dispatch', count: field, data };
    }
    case MessageType.HELLO: {
      if (fdCount !== 0) {
        throw new DispatchWireError('FD_COUNT', `hello carried ${fdCount} fds`);
      }
      if (field > MAX_HELLO_JSON_BYTES) {
        throw new DispatchWireError('TOO_LARGE', `hello of ${field} bytes`);
      }
      exactLength(data, HEADER + field, 'hello');
      return { type: 'hello', hello: parseHello(data.subarray(HEADER)) };
    }
    case MessageType.STOP: {
      if (fdCount !== 0) throw new DispatchWireError('FD_COUNT', `stop carried ${fdCount} fds`);
      exactLength(data, HEADER + 4, 'stop');
      reserved(field, "stop's u16 field");
      return { type: 'stop', deadlineMs: u32(data, HEADER) };
    }
    default:
      throw new DispatchWireError('UNKNOWN_TYPE', `unknown master message type 0x${hex(type)}`);
  }
}

export function dispatchRecordId(data: Uint8Array, i: number): number {
  const at = HEADER + i * RECORD;
  return u32(data, at) + ((data[at + 4] as number) | ((data[at + 5] as number) << 8)) * 2 ** 32;
}

export function dispatchRecordListener(data: Uint8Array, i: number): number {
  return data[HEADER + i * RECORD + 6] as number;
}

function parseHello(json: Uint8Array): WorkerHello {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (err) {
    throw new DispatchWireError('BAD_HELLO', `hello is not UTF-8 JSON: ${(err as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new DispatchWireError('BAD_HELLO', `hello: ${what}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('not an object');
  const v = value as Record<string, unknown>;
  const { slot, generation, drainDeadlineMs } = v;
  if (!isIndex(slot)) bad('slot must be a non-negative integer');
  if (!isIndex(generation)) bad('generation must be a non-negative integer');
  if (!isIndex(drainDeadlineMs) || (drainDeadlineMs as number) > 0xffffffff) {
    bad('drainDeadlineMs must be an integer 0..2^32-1');
  }
  if (!Array.isArray(v.endpoints)) bad('endpoints must be an array');
  const raw = v.endpoints as unknown[];
  if (raw.length > MAX_LISTENERS) bad(`more than ${MAX_LISTENERS} endpoints`);
  const endpoints = raw.map((l, i): DispatchEndpoint => {
    if (typeof l !== 'object' || l === null) return bad(`listener ${i} is not an object`);
    const e = l as Record<string, unknown>;
    if (e.index !== i) bad(`listener ${i} has index ${String(e.index)}`);
    if (e.transport === 'tcp') {
      if (e.family !== 'inet' && e.family !== 'inet6') bad(`listener ${i}: bad family`);
      if (typeof e.address !== 'string' || e.address.length > 64) bad(`listener ${i}: bad address`);
      if (!isIndex(e.port) || (e.port as number) > 65535) bad(`listener ${i}: bad port`);
      // Absent from a master that never sets it: no TCP_NODELAY then.
      if (e.noDelay !== undefined && typeof e.noDelay !== 'boolean') {
        bad(`listener ${i}: noDelay must be a boolean`);
      }
      return {
        index: i,
        transport: 'tcp',
        family: e.family as 'inet' | 'inet6',
        address: e.address as string,
        port: e.port as number,
        noDelay: e.noDelay === true,
      };
    }
    if (e.transport === 'unix') {
      if (e.family !== 'unix') bad(`listener ${i}: bad family`);
      if (typeof e.path !== 'string' || e.path.length > 4096) bad(`listener ${i}: bad path`);
      return { index: i, transport: 'unix', family: 'unix', path: e.path as string };
    }
    return bad(`listener ${i}: unknown transport`);
  });
  return {
    slot: slot as number,
    generation: generation as number,
    drainDeadlineMs: drainDeadlineMs as number,
    endpoints,
  };
}

function isIndex(n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

// --- worker → master --------------------------------------------------------

export function encodeReady(pid: number): Uint8Array {
  const out = new Uint8Array(HEADER + 4);
  out[0] = MessageType.READY;
  out[1] = DISPATCH_WIRE_VERSION;
  putU32(out, HEADER, pid);
  return out;
}

export function encodeReport(entries: readonly ReportEntry[]): Uint8Array {
  if (entries.length > MAX_REPORT_ENTRIES) {
    throw new DispatchWireError('TOO_LARGE', `report of ${entries.length} entries`);
  }
  const out = new Uint8Array(HEADER + entries.length * ENTRY);
  out[0] = MessageType.REPORT;
  out[1] = DISPATCH_WIRE_VERSION;
  putU16(out, 2, entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as ReportEntry;
    const at = HEADER + i * ENTRY;
    out[at] = e.kind;
    out[at + 1] = e.reason;
    putU32(out, at + 4, e.count);
  }
  return out;
}

const REPORT_KINDS = new Set<number>(Object.values(ReportKind));
const DROP_REASONS = new Set<number>(Object.values(DropReason));

/** Decodes one message as the master receives it; workers never send fds. */
export function decodeWorkerMessage(data: Uint8Array, fdCount: number): WorkerMessage {
  const [type, , field] = header(data, fdCount, false);
  switch (type) {
    case MessageType.READY:
      exactLength(data, HEADER + 4, 'ready');
      reserved(field, "ready's u16 field");
      return { type: 'ready', pid: u32(data, HEADER) };
    case MessageType.REPORT: {
      if (field > MAX_REPORT_ENTRIES) {
        throw new DispatchWireError('TOO_LARGE', `report of ${field} entries`);
      }
      exactLength(data, HEADER + field * ENTRY, 'report');
      const entries = new Array<ReportEntry>(field);
      for (let i = 0; i < field; i++) {
        const at = HEADER + i * ENTRY;
        const kind = data[at] as number;
        const reason = data[at + 1] as number;
        reserved(
          (data[at + 2] as number) | ((data[at + 3] as number) << 8),
          `report entry ${i}'s u16`,
        );
        if (!REPORT_KINDS.has(kind)) {
          throw new DispatchWireError('BAD_REPORT', `report entry ${i}: unknown kind ${kind}`);
        }
        if (!DROP_REASONS.has(reason)) {
          throw new DispatchWireError('BAD_REPORT', `report entry ${i}: unknown reason ${reason}`);
        }
        entries[i] = {
          kind: kind as ReportKind,
          reason: reason as DropReason,
          count: u32(data, at + 4),
        };
      }
      return { type: 'report', entries };
    }
    default:
      throw new DispatchWireError('UNKNOWN_TYPE', `unknown worker message type 0x${hex(type)}`);
  }
}
