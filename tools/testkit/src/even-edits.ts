// Evenly placed edits on top of the shared mutators. fast-check's
// fc.double({min: 0, max: 1}) draws uniformly over float encodings, so
// nearly every fraction it yields is tiny and the shared mutators
// (mutations.ts) land on byte 0 or the end: these place edits and cuts by
// integer index, so every byte of a capture gets hit.

import fc from 'fast-check';
import { arbMutated, type Mutated } from './mutations.js';

/** A fraction in [0, 1) drawn uniformly (unlike fc.double). */
export const arbFraction = fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 1_000_001);

/** Cut points for chunk(), spread over the whole input. */
export const arbEvenCuts = fc.array(arbFraction, { maxLength: 12 });

type PointEdit = { name: string; apply(b: Uint8Array): Uint8Array };

const INTERESTING = [0x00, 0x01, 0x0a, 0x0d, 0x20, 0x25, 0x7f, 0x80, 0xff];

const arbPointEdit: fc.Arbitrary<PointEdit> = fc.oneof(
  fc.tuple(arbFraction, fc.integer({ min: 0, max: 7 })).map(([p, bit]) => ({
    name: `flip bit ${bit} at ${p.toFixed(3)}`,
    apply: (b: Uint8Array) => {
      if (b.length === 0) return b;
      const out = b.slice();
      out[Math.floor(p * b.length)]! ^= 1 << bit;
      return out;
    },
  })),
  fc
    .tuple(arbFraction, fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 })))
    .map(([p, v]) => ({
      name: `set byte at ${p.toFixed(3)} to ${v}`,
      apply: (b: Uint8Array) => {
        if (b.length === 0) return b;
        const out = b.slice();
        out[Math.floor(p * b.length)] = v;
        return out;
      },
    })),
  fc.tuple(arbFraction, fc.integer({ min: 1, max: 4 })).map(([p, n]) => ({
    name: `delete ${n} bytes at ${p.toFixed(3)}`,
    apply: (b: Uint8Array) => {
      const i = Math.floor(p * b.length);
      return Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + n)]);
    },
  })),
  fc.tuple(arbFraction, fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([p, ins]) => ({
    name: `insert ${ins.length} bytes at ${p.toFixed(3)}`,
    apply: (b: Uint8Array) => {
      const i = Math.floor(p * (b.length + 1));
      return Uint8Array.from([...b.subarray(0, i), ...ins, ...b.subarray(i)]);
    },
  })),
);

/** arbMutated (its length-field, splice and varint edits), then 0..3 evenly placed point edits. */
export function arbMutatedEvenly(
  corpus: Record<string, Uint8Array>,
  cap: number,
  maxEdits = 3,
): fc.Arbitrary<Mutated> {
  return fc
    .tuple(arbMutated(corpus, cap, 2), fc.array(arbPointEdit, { maxLength: maxEdits }))
    .map(([m, edits]) => {
      let bytes = m.bytes;
      for (const e of edits) bytes = e.apply(bytes);
      return { bytes, trail: [m.trail, ...edits.map((e) => e.name)].join(' | ') };
    });
}
