// Reading protobuf fields the way the generated decoder does, for the
// hand-written decoders of the messages on hot paths (the Frame envelope,
// the Hello and its reply). Same rules as the generated code, which stays
// the reference (differential property tests per message): last value wins,
// a known field with the wrong wire type is skipped like an unknown one,
// groups nest at most 100 deep, strings must be valid UTF-8, bytes are
// views into the input.
import { FrameSyntaxError } from './errors.js';
import { empty } from './schema.js';

const MAX_GROUP_DEPTH = 100;
type Utf8Decoder = { decode(bytes: Uint8Array): string };
let strictUtf8: Utf8Decoder | undefined;

/** The string in `bytes[start, end)`; throws FrameSyntaxError for invalid UTF-8. */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (start === end) return '';
  // Short ASCII (trace headers, names) is built eight characters a call;
  // anything else goes to the runtime's strict UTF-8 decoder.
  if (end - start <= 128) {
    let out = '';
    let i = start;
    for (; i + 8 <= end; i += 8) {
      const a = bytes[i]!;
      const b = bytes[i + 1]!;
      const c = bytes[i + 2]!;
      const d = bytes[i + 3]!;
      const e = bytes[i + 4]!;
      const f = bytes[i + 5]!;
      const g = bytes[i + 6]!;
      const h = bytes[i + 7]!;
      if ((a | b | c | d | e | f | g | h) & 0x80) return out + strictDecode(bytes, i, end);
      out += String.fromCharCode(a, b, c, d, e, f, g, h);
    }
    // The last 0–7 as at most three calls (4, 2, 1), not one per character:
    // most names and versions are shorter than eight.
    if (end - i >= 4) {
      const a = bytes[i]!;
      const b = bytes[i + 1]!;
      const c = bytes[i + 2]!;
      const d = bytes[i + 3]!;
      if ((a | b | c | d) & 0x80) return out + strictDecode(bytes, i, end);
      out += String.fromCharCode(a, b, c, d);
      i += 4;
    }
    if (end - i >= 2) {
      const a = bytes[i]!;
      const b = bytes[i + 1]!;
      if ((a | b) & 0x80) return out + strictDecode(bytes, i, end);
      out += String.fromCharCode(a, b);
      i += 2;
    }
    if (i < end) {
      const a = bytes[i]!;
      if (a & 0x80) return out + strictDecode(bytes, i, end);
      out += String.fromCharCode(a);
    }
    return out;
  }
  return strictDecode(bytes, start, end);
}

function strictDecode(bytes: Uint8Array, start: number, end: number): string {
  // TextDecoder is in every runtime we target, but not in the pure ES lib.
  strictUtf8 ??= new (
    globalThis as unknown as {
      TextDecoder: new (label: string, options: { fatal: boolean }) => Utf8Decoder;
    }
  ).TextDecoder('utf-8', { fatal: true });
  try {
    return strictUtf8.decode(bytes.subarray(start, end));
  } catch {
    throw new FrameSyntaxError('invalid UTF-8 in a string field');
  }
}

/** A read position in one message's bytes, `buf[pos, end)`. */
export class Cursor {
  constructor(
    readonly buf: Uint8Array,
    readonly end: number,
    public pos = 0,
  ) {}

  /** A varint's low 32 bits (as protobuf does for 32-bit fields); up to 10 bytes. */
  varint32(): number {
    const buf = this.buf;
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) throw new FrameSyntaxError('truncated varint');
      const b = buf[this.pos++]!;
      if (shift < 32) value |= (b & 0x7f) << shift;
      if (b < 0x80) return value;
    }
    throw new FrameSyntaxError('varint longer than 10 bytes');
  }

  /** A bool: true when any bit of the varint is set, as protobuf reads it; up to 10 bytes. */
  bool(): boolean {
    const buf = this.buf;
    let any = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new FrameSyntaxError('truncated varint');
      const b = buf[this.pos++]!;
      any |= b & 0x7f;
      if (b < 0x80) return any !== 0;
    }
    throw new FrameSyntaxError('varint longer than 10 bytes');
  }

  varint64(): bigint {
    let lo = 0;
    let hi = 0;
    const buf = this.buf;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new FrameSyntaxError('truncated varint');
      const b = buf[this.pos++]!;
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >> 4;
      } else hi |= bits << (7 * i - 32);
      if (b < 0x80)
        return hi === 0 ? BigInt(lo >>> 0) : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    }
    throw new FrameSyntaxError('varint longer than 10 bytes');
  }

  /**
   * A tag or a length: at most 5 bytes, the 5th holding only the top bits
   * (tags: 4 bits; lengths: 3 bits, so a length stays below 2^31).
   */
  private short(topBits: number, what: string): number {
    const buf = this.buf;
    let value = 0;
    for (let i = 0; i < 4; i++) {
      if (this.pos >= this.end) throw new FrameSyntaxError(`truncated ${what}`);
      const b = buf[this.pos++]!;
      value |= (b & 0x7f) << (7 * i);
      if (b < 0x80) return value >>> 0;
    }
    if (this.pos >= this.end) throw new FrameSyntaxError(`truncated ${what}`);
    const last = buf[this.pos++]!;
    if (last > topBits) throw new FrameSyntaxError(`invalid ${what} encoding`);
    return (value | (last << 28)) >>> 0;
  }

  tag(): number {
    return this.short(0x0f, 'tag');
  }

  /**
   * The bytes of the length-delimited field whose content started at `start`
   * (delimited()'s result) and ends here: a view, or the shared empty array.
   */
  bytesFrom(start: number): Uint8Array {
    return this.pos === start ? empty() : this.buf.subarray(start, this.pos);
  }

  /** Start of a length-delimited field's content; the cursor moves past it. */
  delimited(): number {
    const length = this.short(0x07, 'length');
    const start = this.pos;
    if (length > this.end - start) throw new FrameSyntaxError('length past the end');
    this.pos = start + length;
    return start;
  }

  /**
   * Skips one field. `depth` counts the groups (and nested messages) it is
   * inside: like the generated decoder, any field more than 100 deep fails.
   */
  skip(wireType: number, field: number, depth: number): void {
    if (depth > MAX_GROUP_DEPTH) throw new FrameSyntaxError('groups nested too deep');
    if (field === 0) throw new FrameSyntaxError('field number 0');
    switch (wireType) {
      case 0:
        // Unknown varints are skipped whatever their length, as protobuf does.
        do {
          if (this.pos >= this.end) throw new FrameSyntaxError('truncated varint');
        } while (this.buf[this.pos++]! & 0x80);
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.delimited();
        return;
      case 5:
        this.advance(4);
        return;
      case 3: {
        for (;;) {
          const tag = this.tag();
          const inner = tag >>> 3;
          if (inner === 0) throw new FrameSyntaxError('field number 0');
          if ((tag & 7) === 4) {
            if (inner !== field) throw new FrameSyntaxError('mismatched end group');
            return;
          }
          this.skip(tag & 7, inner, depth + 1);
        }
      }
      default:
        throw new FrameSyntaxError(`invalid wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new FrameSyntaxError('fixed-size field past the end');
    this.pos += n;
  }
}
