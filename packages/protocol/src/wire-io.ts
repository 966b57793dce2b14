// Reader/Writer subclasses that let the protobufjs-generated code speak
// `bigint` for every 64-bit field. Passing them into the generated
// encode/decode keeps protobufjs's global configuration (util.Long) out of
// it entirely: no module-level state is touched, and nothing 64-bit ever
// travels through a lossy `number`.
import protobuf from 'protobufjs/minimal.js';

// protobufjs types Reader#uint64 as returning Long; ours returns bigint,
// so the subclass extends the constructor seen through a narrower type.
interface ReaderState {
  buf: Uint8Array;
  pos: number;
  len: number;
}
const ReaderBase = protobuf.Reader as unknown as new (buffer: Uint8Array) => ReaderState;

class BigIntReader extends ReaderBase {
  /** Reads an unsigned varint of up to 10 bytes as an exact bigint. */
  uint64(): bigint {
    const buf = this.buf;
    const len = this.len;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let b = 0;
    // Bytes 0..3 carry bits 0..27.
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= len) throw outOfRange(this);
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return BigInt(lo >>> 0);
      }
    }
    // Byte 4 carries bits 28..34: four into lo, three into hi.
    if (pos >= len) throw outOfRange(this);
    b = buf[pos++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      // Bytes 5..9 carry bits 35..63 (the last one only bit 63).
      for (let shift = 3; ; shift += 7) {
        if (shift > 31) throw new RangeError('invalid varint encoding');
        if (pos >= len) throw outOfRange(this);
        b = buf[pos++]!;
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = pos;
    return hi === 0 ? BigInt(lo >>> 0) : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }
}

/** A protobufjs Reader over `bytes` whose uint64() yields bigint. */
export function bigIntReader(bytes: Uint8Array): protobuf.Reader {
  return new BigIntReader(bytes) as unknown as protobuf.Reader;
}

function outOfRange(reader: ReaderState): RangeError {
  return new RangeError(`index out of range: ${reader.pos} > ${reader.len}`);
}

class BigIntWriter extends protobuf.Writer {
  /** Writes a bigint (or the protobufjs long forms) as an unsigned varint. */
  override uint64(value: bigint | number | protobuf.Long | string): this {
    if (typeof value === 'bigint') {
      if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
        throw new RangeError(`uint64 out of range: ${value}`);
      }
      if (value < 0x1_0000_0000n) return super.uint64(Number(value)) as this;
      const low = Number(value & 0xffff_ffffn);
      const high = Number(value >> 32n);
      return super.uint64({ low, high, unsigned: true } as protobuf.Long) as this;
    }
    return super.uint64(value) as this;
  }

  /** Copies what was written into a right-sized array carved from a slab. */
  override finish(): Uint8Array {
    const size = this.pos;
    const out = allocate(size);
    const buf = this.buf;
    // A byte loop beats subarray()+set() below a few hundred bytes: the
    // view object alone costs more than copying a small frame.
    if (size <= 256) for (let i = 0; i < size; i++) out[i] = buf[i]!;
    else out.set(buf.subarray(0, size));
    return out;
  }
}

// Typed arrays over 64 bytes live off the V8 heap, and allocating one costs
// more than encoding a small frame. So, like Node's Buffer pool, encoded
// outputs are carved from shared 64 KiB slabs (a slab is freed once no
// output refers to it), and the scratch writer is reused across calls.
// This is a cache, not state: no result depends on it.
const SLAB_BYTES = 64 * 1024;
const SLAB_MAX_PIECE = 4 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

export function allocate(size: number): Uint8Array {
  if (size > SLAB_MAX_PIECE) return new Uint8Array(size);
  if (slabUsed + size > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + size);
  slabUsed = (slabUsed + size + 7) & ~7; // keep pieces 8-byte aligned
  return out;
}

const SCRATCH_KEEP_BYTES = 256 * 1024;
/**
 * A fresh protobufjs Writer whose uint64() takes bigint (range-checked).
 * For code generated from your own .proto: `MyType.encode(value, bigIntWriter()).finish()`.
 */
export function bigIntWriter(): protobuf.Writer {
  return new BigIntWriter();
}

let scratch: BigIntWriter | null = null;

/**
 * An empty writer: the shared scratch one unless a call is already using
 * it (re-entrancy). Give it back with releaseWriter() in a `finally`.
 * (No callback API: a closure per encode is measurable on the hot path.)
 */
export function takeWriter(): protobuf.Writer {
  const writer = scratch ?? new BigIntWriter();
  scratch = null;
  writer.pos = 0;
  writer.states = null;
  return writer;
}

/** Returns a writer from takeWriter(); one that grew past SCRATCH_KEEP_BYTES is dropped. */
export function releaseWriter(writer: protobuf.Writer): void {
  if (writer.buf.length <= SCRATCH_KEEP_BYTES) scratch = writer as BigIntWriter;
}
