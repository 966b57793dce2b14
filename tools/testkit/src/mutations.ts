// fast-check mutators over captured traffic, shared by every package's
// *.fuzz.test.ts: they start from real bytes (a corpus) and break them the
// way hostile peers and broken networks do. Pure: no node: imports.
import fc from 'fast-check';

/**
 * A position in [0, 1), spread evenly. fc.double draws evenly over bit
 * patterns, so nearly all its values are tiny: edits and cuts would pile up
 * at offset 0 and the middle of a message would never be mutated.
 */
const evenFraction = fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 1_000_001);

/** A captured corpus file: named entries of hex bytes. */
export interface CorpusFile {
  /** How to regenerate it (a test file and a command). */
  regenerate: string;
  entries: Record<string, string>;
}

export const fromHex = (hex: string): Uint8Array =>
  Uint8Array.from((hex.match(/../g) ?? []).map((b) => Number.parseInt(b, 16)));
export const toHex = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Offsets of the v1 frame headers in `bytes`, walked while headers stay plausible. */
export function frameHeaderOffsets(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let at = 0;
  while (at + 5 <= bytes.length && bytes[at] === 1) {
    out.push(at);
    const length =
      (bytes[at + 1]! | (bytes[at + 2]! << 8) | (bytes[at + 3]! << 16) | (bytes[at + 4]! << 24)) >>>
      0;
    at += 5 + length;
  }
  return out;
}

function setU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}

/** One edit: a pure function of its input plus the random numbers drawn for it. */
export type Mutation = { name: string; apply(bytes: Uint8Array, corpus: Uint8Array[]): Uint8Array };

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x25, 0x20];

/**
 * Mutations; `cap` is the frame body cap the target enforces, so length
 * edits hit 0, cap-1, cap, cap+1 and 2^32-1 exactly.
 */
export function arbMutation(cap: number): fc.Arbitrary<Mutation> {
  const pos = evenFraction;
  const at = (p: number, n: number) => Math.min(n, Math.floor(p * (n + 1)));
  return fc.oneof(
    fc.tuple(pos, fc.integer({ min: 0, max: 7 })).map(([p, bit]) => ({
      name: `flip bit ${bit} at ${p.toFixed(3)}`,
      apply: (b: Uint8Array) => {
        if (b.length === 0) return b;
        const out = b.slice();
        out[Math.min(b.length - 1, Math.floor(p * b.length))]! ^= 1 << bit;
        return out;
      },
    })),
    fc.tuple(pos, fc.constantFrom(...INTERESTING_BYTES)).map(([p, v]) => ({
      name: `set byte at ${p.toFixed(3)} to ${v}`,
      apply: (b: Uint8Array) => {
        if (b.length === 0) return b;
        const out = b.slice();
        out[Math.min(b.length - 1, Math.floor(p * b.length))] = v;
        return out;
      },
    })),
    fc.tuple(pos, fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([p, ins]) => ({
      name: `insert ${ins.length} bytes at ${p.toFixed(3)}`,
      apply: (b: Uint8Array) => {
        const i = at(p, b.length);
        const out = new Uint8Array(b.length + ins.length);
        out.set(b.subarray(0, i));
        out.set(ins, i);
        out.set(b.subarray(i), i + ins.length);
        return out;
      },
    })),
    fc.tuple(pos, fc.integer({ min: 1, max: 8 })).map(([p, n]) => ({
      name: `delete ${n} bytes at ${p.toFixed(3)}`,
      apply: (b: Uint8Array) => {
        const i = at(p, b.length);
        const j = Math.min(b.length, i + n);
        const out = new Uint8Array(b.length - (j - i));
        out.set(b.subarray(0, i));
        out.set(b.subarray(j), i);
        return out;
      },
    })),
    pos.map((p) => ({
      name: `truncate at ${p.toFixed(3)}`,
      apply: (b: Uint8Array) => b.slice(0, at(p, b.length)),
    })),
    fc.tuple(pos, pos, fc.nat()).map(([p, q, k]) => ({
      name: `splice at ${p.toFixed(3)} with entry ${k} from ${q.toFixed(3)}`,
      apply: (b: Uint8Array, corpus: Uint8Array[]) => {
        const other = corpus[k % Math.max(1, corpus.length)] ?? b;
        const head = b.subarray(0, at(p, b.length));
        const tail = other.subarray(at(q, other.length));
        const out = new Uint8Array(head.length + tail.length);
        out.set(head);
        out.set(tail, head.length);
        return out;
      },
    })),
    fc
      .tuple(
        fc.nat(),
        fc.constantFrom(0, cap - 1, cap, cap + 1, 0xffff_ffff, 'minus1' as const, 'plus1' as const),
      )
      .map(([k, value]) => ({
        name: `length field of frame ${k} := ${value}`,
        apply: (b: Uint8Array) => {
          const heads = frameHeaderOffsets(b);
          if (heads.length === 0) return b;
          const h = heads[k % heads.length]!;
          const out = b.slice();
          const old = (b[h + 1]! | (b[h + 2]! << 8) | (b[h + 3]! << 16) | (b[h + 4]! << 24)) >>> 0;
          const v = value === 'minus1' ? old - 1 : value === 'plus1' ? old + 1 : value;
          setU32(out, h + 1, v >>> 0);
          return out;
        },
      })),
    fc.tuple(pos, fc.constantFrom('continue', 'stop', 'overlong')).map(([p, how]) => ({
      name: `varint edit (${how}) near ${p.toFixed(3)}`,
      apply: (b: Uint8Array) => {
        if (b.length === 0) return b;
        const out = b.slice();
        const i = Math.min(b.length - 1, Math.floor(p * b.length));
        if (how === 'continue') out[i]! |= 0x80;
        else if (how === 'stop') out[i]! &= 0x7f;
        else {
          // Ten continuation bytes: past the longest legal varint.
          const long = new Uint8Array(b.length + 10);
          long.set(b.subarray(0, i));
          long.fill(0xff, i, i + 10);
          long.set(b.subarray(i), i + 10);
          return long;
        }
        return out;
      },
    })),
  );
}

export interface Mutated {
  bytes: Uint8Array;
  /** Which corpus entry and which edits: printed by fast-check on failure. */
  trail: string;
}

/** A corpus entry with 0..maxEdits mutations applied (0 keeps real traffic in the mix). */
export function arbMutated(
  corpus: Record<string, Uint8Array>,
  cap: number,
  maxEdits = 4,
): fc.Arbitrary<Mutated> {
  const names = Object.keys(corpus);
  const all = names.map((n) => corpus[n]!);
  return fc
    .tuple(fc.constantFrom(...names), fc.array(arbMutation(cap), { maxLength: maxEdits }))
    .map(([name, edits]) => {
      let bytes = corpus[name]!;
      for (const e of edits) bytes = e.apply(bytes, all);
      return { bytes, trail: [name, ...edits.map((e) => e.name)].join(' | ') };
    });
}

/** Cuts `bytes` at the given fractions: the pieces concatenate back to `bytes`. */
export function chunk(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    if (p <= from || p >= bytes.length) continue;
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

export const arbCuts = fc.array(evenFraction, {
  maxLength: 12,
});
