// Writing protobuf fields by hand, for the hand-written encoders on hot
// paths (the Frame envelope, the handoff messages): the size a value takes
// and writing it at a position in a right-sized output. Same bytes as the
// generated encoder, which stays the reference (property tests per message).

const U64_MAX = 0xffff_ffff_ffff_ffffn;

export function varint32Size(value: number): number {
  return value < 0x80
    ? 1
    : value < 0x4000
      ? 2
      : value < 0x20_0000
        ? 3
        : value < 0x1000_0000
          ? 4
          : 5;
}

export function writeVarint32(value: number, out: Uint8Array, at: number): number {
  let v = value >>> 0;
  let pos = at;
  while (v > 0x7f) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

/** An int32 as protobuf writes it: negative values take 10 bytes. */
export function int32Size(value: number): number {
  return value < 0 ? 10 : varint32Size(value);
}

export function writeInt32(value: number, out: Uint8Array, at: number): number {
  if (value >= 0) return writeVarint32(value, out, at);
  // Sign-extended to 64 bits: the low word, then an all-ones high word.
  let pos = at;
  let lo = value >>> 0;
  for (let i = 0; i < 4; i++) {
    out[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  out[pos++] = (lo & 0x0f) | 0x70 | 0x80; // 4 low bits + 3 high-word ones
  for (let i = 0; i < 4; i++) out[pos++] = 0xff;
  out[pos++] = 0x01;
  return pos;
}

/** The low 32 bits of a u64 field value (0 for an absent one); validates. */
export function u64Low(value: bigint | number | undefined | null): number {
  if (value === undefined || value === null || value === 0n || value === 0) return 0;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RangeError(`uint64 out of range: ${value}`);
    return value >>> 0;
  }
  if (value < 0n || value > U64_MAX) throw new RangeError(`uint64 out of range: ${value}`);
  return value < 0x1_0000_0000n ? Number(value) : Number(value & 0xffff_ffffn);
}

/** The high 32 bits of a u64 field value already checked by u64Low. */
export function u64High(value: bigint | number | undefined | null): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return Math.floor(value / 0x1_0000_0000) >>> 0;
  return value < 0x1_0000_0000n ? 0 : Number(value >> 32n);
}

export function varint64Size(lo: number, hi: number): number {
  if (hi === 0) return varint32Size(lo);
  // Bits above 32: 35 bits fit 5 bytes, then 7 more bits per byte.
  return hi < 0x8
    ? 5
    : hi < 0x400
      ? 6
      : hi < 0x2_0000
        ? 7
        : hi < 0x100_0000
          ? 8
          : hi < 0x8000_0000
            ? 9
            : 10;
}

export function writeVarint64(lo: number, hi: number, out: Uint8Array, at: number): number {
  if (hi === 0) return writeVarint32(lo, out, at);
  let pos = at;
  let l = lo >>> 0;
  let h = hi >>> 0;
  for (let i = 0; i < 4; i++) {
    out[pos++] = (l & 0x7f) | 0x80;
    l >>>= 7;
  }
  // Byte 4 takes the last 4 bits of lo and the first 3 of hi.
  let b = l | ((h & 0x07) << 4);
  h >>>= 3;
  while (h !== 0) {
    out[pos++] = b | 0x80;
    b = h & 0x7f;
    h >>>= 7;
  }
  out[pos++] = b;
  return pos;
}
