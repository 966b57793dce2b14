// The kv-state snapshot a stopping demo daemon leaves its successor: a round
// trip keeps values, TTLs (counted from the save) and LRU order; keys the
// loading store already has win; and any bytes at all either load whole or
// are refused with KvSnapshotError before anything is set.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeKvSnapshot, KvSnapshotError, loadKvSnapshot } from '../src/kv-snapshot.js';
import { KvStore } from '../src/kv-store.js';

const te = new TextEncoder();
const td = new TextDecoder();
const k = (s: string) => te.encode(s);

function clock(start = 1000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('kv snapshot', () => {
  it('round-trips values, remaining TTLs and the LRU order', () => {
    const c = clock();
    const old = new KvStore({ now: c.now });
    old.set(k('a'), k('1'));
    old.set(k('b'), k('2'), 10_000);
    old.set(k('c'), k('3'));
    old.get(k('a')); // a is now the most recently used
    c.advance(4000);
    const bytes = encodeKvSnapshot(old, 50_000);
    const fresh = new KvStore({ maxEntries: 3 });
    // Saved at 50 000, loaded 1000 ms later: b has 5000 ms left.
    expect(loadKvSnapshot(fresh, bytes, 51_000)).toEqual({ loaded: 3, skipped: 0 });
    expect(td.decode(fresh.get(k('b'))!.value)).toBe('2');
    expect(fresh.get(k('b'))!.ttlRemainingMs).toBeLessThanOrEqual(5000);
    expect(fresh.get(k('b'))!.ttlRemainingMs).toBeGreaterThan(4000);
    // Order kept: one more entry evicts c (least recent after b and a were read).
    fresh.set(k('d'), k('4'));
    expect(fresh.has(k('c'))).toBe(false);
    expect(fresh.has(k('a'))).toBe(true);
  });

  it('keys already present win, and entries that expired since the save are skipped', () => {
    const old = new KvStore();
    old.set(k('kept'), k('old'));
    old.set(k('short'), k('x'), 100);
    const bytes = encodeKvSnapshot(old, 10_000);
    const fresh = new KvStore();
    fresh.set(k('kept'), k('new'));
    expect(loadKvSnapshot(fresh, bytes, 10_500)).toEqual({ loaded: 0, skipped: 2 });
    expect(td.decode(fresh.get(k('kept'))!.value)).toBe('new');
    expect(fresh.has(k('short'))).toBe(false);
  });

  it('refuses a bad header, another version, too many entries, and trailing bytes', () => {
    const old = new KvStore();
    old.set(k('a'), k('1'));
    const good = encodeKvSnapshot(old);
    const store = new KvStore({ maxEntries: 1 });
    const codes = (bytes: Uint8Array) => {
      try {
        loadKvSnapshot(store, bytes);
        return 'ok';
      } catch (error) {
        expect(error).toBeInstanceOf(KvSnapshotError);
        return (error as KvSnapshotError).code;
      }
    };
    expect(codes(good.subarray(0, 10))).toBe('BAD_SNAPSHOT');
    const v2 = new Uint8Array(good);
    v2[4] = 2;
    expect(codes(v2)).toBe('UNKNOWN_VERSION');
    const many = new Uint8Array(good);
    many[13] = 2;
    expect(codes(many)).toBe('TOO_LARGE');
    expect(codes(new Uint8Array([...good, 0]))).toBe('BAD_SNAPSHOT');
    expect(store.stats().entries).toBe(0);
    expect(codes(good)).toBe('ok');
  });

  it('any bytes, mutated or random: loads, or throws KvSnapshotError having set nothing (numRuns 1000)', () => {
    const source = new KvStore();
    for (let i = 0; i < 5; i++) source.set(k(`key${i}`), k(`value${i}`), i * 1000);
    const good = encodeKvSnapshot(source);
    const arbBytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc
        .array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 4,
        })
        .map((edits) => {
          const out = new Uint8Array(good);
          for (const [at, value] of edits) out[at] = value;
          return out;
        }),
      fc.nat(good.length).map((n) => good.subarray(0, n)),
    );
    fc.assert(
      fc.property(arbBytes, (bytes) => {
        const store = new KvStore({ maxEntries: 10, maxBytes: 4096 });
        try {
          const result = loadKvSnapshot(store, bytes);
          expect(result.loaded + result.skipped).toBeLessThanOrEqual(10);
        } catch (error) {
          expect(error).toBeInstanceOf(KvSnapshotError);
          expect(store.stats().entries).toBe(0);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
