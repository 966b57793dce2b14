import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlotSet } from '../src/slot-set.js';

describe('SlotSet', () => {
  it('adds, counts, iterates and deletes by slot and member', () => {
    const set = new SlotSet<{ n: number }>();
    const a = { n: 1 };
    const b = { n: 2 };
    const sa = set.add(a);
    const sb = set.add(b);
    expect(sa).not.toBe(sb);
    expect(set.size).toBe(2);
    expect([...set]).toEqual([a, b]);
    expect(set.get(sa)).toBe(a);
    expect(set.delete(sa, a)).toBe(true);
    expect(set.size).toBe(1);
    expect(set.get(sa)).toBeUndefined();
    expect([...set]).toEqual([b]);
  });

  it('a second delete cannot remove the member that reused the slot', () => {
    const set = new SlotSet<{ n: number }>();
    const a = { n: 1 };
    const c = { n: 3 };
    const slot = set.add(a);
    expect(set.delete(slot, a)).toBe(true);
    expect(set.add(c)).toBe(slot); // recycled
    expect(set.delete(slot, a)).toBe(false);
    expect(set.get(slot)).toBe(c);
    expect(set.size).toBe(1);
  });

  it('refuses slots it never gave out', () => {
    const set = new SlotSet<object>();
    const a = {};
    set.add(a);
    for (const slot of [-1, 1, 1.5, Number.NaN, 2 ** 40]) expect(set.delete(slot, a)).toBe(false);
    expect(set.size).toBe(1);
  });

  it('values() is a snapshot: deleting while iterating visits every member once', () => {
    const set = new SlotSet<{ n: number }>();
    const slots = new Map<{ n: number }, number>();
    for (let n = 0; n < 10; n++) {
      const v = { n };
      slots.set(v, set.add(v));
    }
    const seen: number[] = [];
    for (const v of set) {
      seen.push(v.n);
      set.delete(slots.get(v) as number, v);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(set.size).toBe(0);
  });

  it('slots grow only to the peak membership', () => {
    const set = new SlotSet<object>();
    for (let round = 0; round < 100; round++) {
      const members = Array.from({ length: 8 }, () => ({}));
      const slots = members.map((m) => set.add(m));
      expect(Math.max(...slots)).toBeLessThan(8);
      for (const [i, m] of members.entries()) expect(set.delete(slots[i] as number, m)).toBe(true);
    }
  });

  it('behaves as a set of its members under any sequence of adds and deletes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant('add' as const), fc.nat(64), fc.constant('stale' as const)), {
          maxLength: 300,
        }),
        (ops) => {
          const set = new SlotSet<{ id: number }>();
          const model = new Map<number, { value: { id: number }; slot: number }>();
          const gone: { value: { id: number }; slot: number }[] = [];
          let next = 0;
          for (const op of ops) {
            if (op === 'add') {
              const value = { id: next++ };
              const slot = set.add(value);
              for (const m of model.values()) expect(m.slot).not.toBe(slot);
              model.set(value.id, { value, slot });
            } else if (op === 'stale') {
              // Deleting a member that already left never changes anything.
              const old = gone.at(-1);
              if (old) expect(set.delete(old.slot, old.value)).toBe(false);
            } else {
              const live = [...model.values()];
              const pick = live[op % Math.max(live.length, 1)];
              if (!pick) continue;
              expect(set.delete(pick.slot, pick.value)).toBe(true);
              model.delete(pick.value.id);
              gone.push(pick);
            }
            expect(set.size).toBe(model.size);
          }
          const ids = [...set].map((v) => v.id).sort((x, y) => x - y);
          expect(ids).toEqual([...model.keys()].sort((x, y) => x - y));
        },
      ),
    );
  });
});
