// Decoding a running-process `.servicedef` (protobuf ServiceDefinition,
// proto/running_process_servicedef.proto) from bytes that may be hostile:
// every length is checked against what is left and against a cap before a
// string is made. What the fields mean to this broker is servicedef.ts.
import { ServicedefError } from './errors.js';

/** A `.servicedef` is a few paths and versions; anything bigger is refused unread. */
export const MAX_SERVICEDEF_BYTES = 64 * 1024;
/** PATH_MAX: no path, name or version field is longer. */
export const MAX_SERVICEDEF_STRING_BYTES = 4096;
/** Entries in version_allow_list, and in labels. */
export const MAX_SERVICEDEF_LIST = 256;

/** RP's BrokerIsolation values. */
export const RpIsolation = {
  PRIVATE_BROKER: 0,
  SHARED_BROKER: 1,
  EXPLICIT_INSTANCE: 2,
} as const;

/** A decoded ServiceDefinition; proto3 defaults ('' and 0) for fields not present. */
export interface RpServicedef {
  serviceName: string;
  binaryPath: string;
  /** An RpIsolation value, or any other int32 the file held (refused by the mapping). */
  isolation: number;
  explicitInstance: string;
  perVersionBinaryDir: string;
  minVersion: string;
  versionAllowList: string[];
  labels: Map<string, string>;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const STRING_FIELDS = {
  1: 'service_name',
  2: 'binary_path',
  4: 'explicit_instance',
  5: 'per_version_binary_dir',
  6: 'min_version',
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A cursor over one message's bytes (the file, or a map entry inside it). */
class Cursor {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /**
   * A varint of at most 10 bytes: its value (exact below 2^53, which is all
   * a tag or a length may be) and its low 32 bits as a signed int32 (an enum).
   */
  varint(field: string): { value: number; int32: number } {
    let value = 0;
    let low = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed(field, 'a varint runs past the end');
      const b = this.bytes[this.pos++]!;
      value += (b & 0x7f) * 2 ** (7 * i);
      if (i < 5) low |= (b & 0x7f) << (7 * i);
      if (b < 0x80) {
        if (i === 9 && b > 1) throw malformed(field, 'a varint overflows 64 bits');
        return { value, int32: low | 0 };
      }
    }
    throw malformed(field, 'a varint is longer than 10 bytes');
  }

  /** A length-delimited payload's bounds, checked against the bytes left and `cap`. */
  span(field: string, cap: number): { start: number; end: number } {
    const { value: length } = this.varint(field);
    if (length > this.end - this.pos)
      throw malformed(field, `a length of ${length} runs past the end`);
    if (length > cap) throw tooLarge(field, `${length} bytes, over the ${cap}-byte cap`);
    const start = this.pos;
    this.pos += length;
    return { start, end: this.pos };
  }

  string(field: string): string {
    const { start, end } = this.span(field, MAX_SERVICEDEF_STRING_BYTES);
    try {
      return utf8.decode(this.bytes.subarray(start, end));
    } catch {
      throw malformed(field, 'is not valid UTF-8');
    }
  }

  /** Skips a field this schema does not know (proto3 keeps going). */
  skip(wireType: number, field: string): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint(field);
        return;
      case WIRE_FIXED64:
        this.advance(8, field);
        return;
      case WIRE_LEN:
        this.span(field, Number.POSITIVE_INFINITY);
        return;
      case WIRE_FIXED32:
        this.advance(4, field);
        return;
      default:
        // 3 and 4 are proto2 groups, which no proto3 schema writes; 6 and 7 do not exist.
        throw malformed(field, `wire type ${wireType} is not supported`);
    }
  }

  private advance(n: number, field: string): void {
    if (n > this.end - this.pos) throw malformed(field, `${n} bytes run past the end`);
    this.pos += n;
  }

  /** The next tag: field number and wire type. */
  tag(): { number: number; wireType: number } {
    const { value } = this.varint('<tag>');
    const number = Math.floor(value / 8);
    if (number < 1 || number > 0x1fff_ffff)
      throw malformed('<tag>', `field number ${number} is out of range`);
    return { number, wireType: value % 8 };
  }
}

function malformed(field: string, message: string): ServicedefError {
  return new ServicedefError('MALFORMED', field, message);
}

function tooLarge(field: string, message: string): ServicedefError {
  return new ServicedefError('TOO_LARGE', field, message);
}

function expectWire(field: string, got: number, want: number): void {
  if (got !== want) throw malformed(field, `has wire type ${got}, not ${want}`);
}

/** Decodes one `.servicedef`. Throws only ServicedefError (MALFORMED, TOO_LARGE). */
export function decodeServicedef(bytes: Uint8Array): RpServicedef {
  if (bytes.length > MAX_SERVICEDEF_BYTES)
    throw tooLarge('<file>', `${bytes.length} bytes, over the ${MAX_SERVICEDEF_BYTES}-byte cap`);
  const out: RpServicedef = {
    serviceName: '',
    binaryPath: '',
    isolation: RpIsolation.PRIVATE_BROKER,
    explicitInstance: '',
    perVersionBinaryDir: '',
    minVersion: '',
    versionAllowList: [],
    labels: new Map(),
  };
  const c = new Cursor(bytes, 0, bytes.length);
  while (!c.done) {
    const { number, wireType } = c.tag();
    switch (number) {
      case 1:
      case 2:
      case 4:
      case 5:
      case 6: {
        const field = STRING_FIELDS[number];
        expectWire(field, wireType, WIRE_LEN);
        const value = c.string(field);
        // A repeated scalar field: the last one wins, as in every protobuf decoder.
        if (number === 1) out.serviceName = value;
        else if (number === 2) out.binaryPath = value;
        else if (number === 4) out.explicitInstance = value;
        else if (number === 5) out.perVersionBinaryDir = value;
        else out.minVersion = value;
        break;
      }
      case 3:
        if (wireType === WIRE_LEN) {
          // A packed repeated enum written into a singular field: the last element wins.
          const { start, end } = c.span('isolation', MAX_SERVICEDEF_STRING_BYTES);
          const packed = new Cursor(bytes, start, end);
          while (!packed.done) out.isolation = packed.varint('isolation').int32;
          break;
        }
        expectWire('isolation', wireType, WIRE_VARINT);
        out.isolation = c.varint('isolation').int32;
        break;
      case 7: {
        const field = `version_allow_list[${out.versionAllowList.length}]`;
        expectWire(field, wireType, WIRE_LEN);
        if (out.versionAllowList.length >= MAX_SERVICEDEF_LIST)
          throw tooLarge('version_allow_list', `more than ${MAX_SERVICEDEF_LIST} entries`);
        out.versionAllowList.push(c.string(field));
        break;
      }
      case 8: {
        expectWire('labels', wireType, WIRE_LEN);
        const { start, end } = c.span('labels', MAX_SERVICEDEF_BYTES);
        const [key, value] = decodeLabel(bytes, start, end);
        if (!out.labels.has(key) && out.labels.size >= MAX_SERVICEDEF_LIST)
          throw tooLarge('labels', `more than ${MAX_SERVICEDEF_LIST} entries`);
        out.labels.set(key, value);
        break;
      }
      default:
        c.skip(wireType, `field ${number}`);
    }
  }
  return out;
}

/** One map entry: key = 1, value = 2, both strings (missing means ''). */
function decodeLabel(bytes: Uint8Array, start: number, end: number): [string, string] {
  const c = new Cursor(bytes, start, end);
  let key = '';
  let value = '';
  while (!c.done) {
    const { number, wireType } = c.tag();
    if (number === 1) {
      expectWire('labels.key', wireType, WIRE_LEN);
      key = c.string('labels.key');
    } else if (number === 2) {
      expectWire(`labels[${JSON.stringify(key)}]`, wireType, WIRE_LEN);
      value = c.string(`labels[${JSON.stringify(key)}]`);
    } else {
      c.skip(wireType, `labels.field ${number}`);
    }
  }
  return [key, value];
}
