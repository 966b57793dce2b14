// SeriesMap finds a series by walking one Map per label instead of building
// a key. Held to a model keyed by the JSON of the values: the same series
// for the same values (never one for two tuples that would join alike), a
// scrape in creation order, and the same refusals of wrong label sets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pinnedLabels, SeriesMap } from '../src/metrics-series.js';

/** Short values rich in what a joined key could confuse. */
const arbValue = fc.oneof(
  fc.constantFrom('', 'a', '\u0000', 'a\u0000', '\u0000b', ',', '","', '[', ']', '"', '\\'),
  fc.string({ unit: 'binary', maxLength: 4 }),
);

class Refused extends Error {}

function seriesOf(names: readonly string[]) {
  return new SeriesMap<{ n: number }>(
    names,
    () => ({ n: 0 }),
    () => new Refused(),
  );
}

describe('SeriesMap', () => {
  it('keeps one series per value tuple, scraped in creation order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.array(
          fc.tuple(fc.boolean(), fc.boolean(), fc.array(arbValue, { minLength: 3, maxLength: 3 })),
          { maxLength: 40 },
        ),
        (labelCount, ops) => {
          const names = ['a', 'b', 'c'].slice(0, labelCount);
          const series = seriesOf(names);
          const model = new Map<string, { values: string[]; n: number }>();
          // Pinned labels, reused for the same values as a hot caller keeps
          // them (they remember their series), mixed with fresh plain ones.
          const pinned = new Map<string, Readonly<Record<string, string>>>();
          for (const [write, reuse, all] of ops) {
            const values = all.slice(0, labelCount);
            const key = JSON.stringify(values);
            const fresh = () => Object.fromEntries(names.map((n, i) => [n, values[i]!]));
            let labels = reuse ? pinned.get(key) : fresh();
            if (labels === undefined) {
              labels = pinnedLabels(fresh());
              pinned.set(key, labels);
            }
            if (write) {
              series.get(labels).n++;
              const entry = model.get(key) ?? { values, n: 0 };
              entry.n++;
              model.set(key, entry);
            } else {
              expect(series.peek(labels)?.n).toBe(model.get(key)?.n);
            }
          }
          expect([...series.entries()].map(([values, s]) => [values, s.n])).toEqual(
            [...model.values()].map((e) => [e.values, e.n]),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('takes no labels object for a family without labels, and refuses none for one with', () => {
    const bare = seriesOf([]);
    bare.get(undefined).n++;
    bare.get({}).n++;
    expect(bare.peek(undefined)?.n).toBe(2);
    expect(() => seriesOf(['a']).get(undefined)).toThrow(Refused);
    expect(() => seriesOf(['a']).peek(undefined)).toThrow(Refused);
  });

  it('checks pinned labels until they find a series, in whichever family they are used', () => {
    const series = seriesOf(['a', 'b']);
    const other = seriesOf(['a', 'b']);
    const wrong = pinnedLabels({ a: 'x' });
    expect(() => series.get(wrong)).toThrow(Refused);
    expect(() => series.get(wrong)).toThrow(Refused);
    const right = pinnedLabels({ a: 'x', b: 'y' });
    expect(Object.isFrozen(right)).toBe(true);
    expect(Object.keys(right)).toEqual(['a', 'b']);
    // Alternating between two families: each update lands in its own.
    for (let i = 0; i < 3; i++) {
      series.get(right).n++;
      other.get(right).n += 10;
    }
    expect(series.peek({ a: 'x', b: 'y' })?.n).toBe(3);
    expect(other.peek({ a: 'x', b: 'y' })?.n).toBe(30);
    expect([...series.entries()].map(([values]) => values)).toEqual([['x', 'y']]);
    expect(() => seriesOf(['a']).get(right)).toThrow(Refused);
    // null from a JavaScript caller: refused as before.
    expect(() => series.get(null as never)).toThrow();
  });

  it('refuses missing, extra and undefined labels on get and peek alike', () => {
    const series = seriesOf(['a', 'b']);
    series.get({ a: 'x', b: 'y' });
    const wrong: Record<string, string>[] = [
      {},
      { a: 'x' },
      { a: 'x', c: 'y' },
      { a: 'x', b: 'y', c: 'z' },
      { a: 'x', b: undefined as unknown as string },
    ];
    for (const labels of wrong) {
      expect(() => series.get(labels)).toThrow(Refused);
      expect(() => series.peek(labels)).toThrow(Refused);
      expect(() => series.keyOf(labels)).toThrow(Refused);
    }
    expect(() => seriesOf([]).get({ a: 'x' })).toThrow(Refused);
    expect([...series.entries()]).toHaveLength(1);
  });
});
