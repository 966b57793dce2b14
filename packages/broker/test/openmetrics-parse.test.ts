// The OpenMetrics text parser top reads scrapes with: what it returns for
// the broker's own renderings (round trips), and that hostile input —
// random, mutated, truncated, huge — only ever ends in OpenMetricsParseError.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBrokerMetrics, createMetricsRegistry } from '../src/metrics.js';
import { OpenMetricsParseError, parseOpenMetrics } from '../src/openmetrics-parse.js';

/** Parses, or returns the parse error's code; any other throw fails the test. */
function outcome(text: string): 'ok' | string {
  try {
    parseOpenMetrics(text);
    return 'ok';
  } catch (error) {
    if (!(error instanceof OpenMetricsParseError)) throw error;
    return error.code;
  }
}

function brokerScrape(): string {
  const r = createMetricsRegistry();
  const m = createBrokerMetrics(r);
  m.helloTotal.inc({ service: 'demo-kv', outcome: 'handoff' }, 3);
  m.helloDuration.observe(0.0003, { service: 'demo-kv' });
  m.helloRefusedTotal.inc({ service: 'x"y\\z\n', code: 'SERVICE_UNKNOWN' });
  m.spawnAttemptsTotal.inc({ service: 'demo-kv', outcome: 'failed' });
  return r.render();
}

describe('parseOpenMetrics', () => {
  it('reads families, types, help, labels and values back', () => {
    const parsed = parseOpenMetrics(
      [
        '# TYPE hello counter',
        '# HELP hello Hellos \\"handled\\".',
        'hello_total{service="a",outcome="handoff"} 3',
        'hello_created{service="a",outcome="handoff"} 1.7e9',
        '# TYPE lat histogram',
        'lat_bucket{le="0.5"} 1',
        'lat_bucket{le="+Inf"} 2',
        'lat_sum 1.25',
        'lat_count 2',
        '# TYPE g gauge',
        '# UNIT g seconds',
        'g -Inf 123',
        'stray{a="1"} NaN',
        '# EOF',
        '',
      ].join('\n'),
    );
    expect([...parsed.families.keys()]).toEqual(['hello', 'lat', 'g', 'stray']);
    const hello = parsed.families.get('hello')!;
    expect(hello).toMatchObject({ type: 'counter', help: 'Hellos "handled".' });
    expect(hello.samples.map((s) => [s.name, { ...s.labels }, s.value])).toEqual([
      ['hello_total', { service: 'a', outcome: 'handoff' }, 3],
      ['hello_created', { service: 'a', outcome: 'handoff' }, 1.7e9],
    ]);
    expect(parsed.families.get('lat')!.samples.map((s) => s.name)).toEqual([
      'lat_bucket',
      'lat_bucket',
      'lat_sum',
      'lat_count',
    ]);
    expect(parsed.families.get('lat')!.samples[1]!.labels.le).toBe('+Inf');
    expect(parsed.families.get('g')!.samples[0]!.value).toBe(Number.NEGATIVE_INFINITY);
    expect(parsed.families.get('stray')).toMatchObject({ type: 'unknown' });
    expect(Number.isNaN(parsed.families.get('stray')!.samples[0]!.value)).toBe(true);
  });

  it('reads the broker’s own scrape, escaped label values included', () => {
    const parsed = parseOpenMetrics(brokerScrape());
    const refused = parsed.families.get('hello_refused')!.samples[0]!;
    expect(refused.labels.service).toBe('x"y\\z\n');
    expect(refused.value).toBe(1);
    const buckets = parsed.families
      .get('hello_duration_seconds')!
      .samples.filter((s) => s.name.endsWith('_bucket'));
    expect(buckets).toHaveLength(16);
    expect(buckets.at(-1)).toMatchObject({ labels: { service: 'demo-kv', le: '+Inf' }, value: 1 });
  });

  it('keeps a label named __proto__ as data', () => {
    const parsed = parseOpenMetrics('x{__proto__="p",constructor="c"} 1\n# EOF\n');
    const labels = parsed.families.get('x')!.samples[0]!.labels;
    expect(Object.keys(labels)).toEqual(['__proto__', 'constructor']);
    expect(labels['__proto__' as string]).toBe('p');
    expect(({} as Record<string, unknown>).p).toBeUndefined();
  });

  it.each([
    ['no # EOF (a truncated scrape)', 'a 1\n', 'SYNTAX', 0],
    ['text after # EOF', '# EOF\na 1\n# EOF\n', 'SYNTAX', 2],
    ['a label given twice', 'a{x="1",x="2"} 1\n# EOF\n', 'SYNTAX', 1],
    ['a bad escape', 'a{x="\\t"} 1\n# EOF\n', 'SYNTAX', 1],
    ['an unterminated label value', 'a{x="1} 1\n# EOF\n', 'SYNTAX', 1],
    ['a value that is not a number', 'a 0x10\n# EOF\n', 'SYNTAX', 1],
    ['no value', 'a\n# EOF\n', 'SYNTAX', 1],
    ['an unknown type', '# TYPE a thing\n# EOF\n', 'SYNTAX', 1],
    ['metadata after samples', 'a 1\n# TYPE a gauge\n# EOF\n', 'SYNTAX', 2],
    ['a stray comment', '# hello\n# EOF\n', 'SYNTAX', 1],
    ['a name starting with a digit', '1a 1\n# EOF\n', 'SYNTAX', 1],
  ])('refuses %s, naming the line', (_why, text, code, line) => {
    expect.assertions(3);
    try {
      parseOpenMetrics(text);
    } catch (error) {
      expect(error).toBeInstanceOf(OpenMetricsParseError);
      expect((error as OpenMetricsParseError).code).toBe(code);
      expect((error as OpenMetricsParseError).line).toBe(line);
    }
  });

  it('refuses input beyond its limits: size, samples, labels', () => {
    expect(outcome(`${'x'.repeat(100)}\n# EOF\n`)).toBe('SYNTAX');
    expect(() => parseOpenMetrics('a 1\n# EOF\n', { maxChars: 5 })).toThrow(/exceed 5/);
    expect(() => parseOpenMetrics('a 1\na 2\na 3\n# EOF\n', { maxSamples: 2 })).toThrow(
      /more than 2 samples/,
    );
    const labels = Array.from({ length: 70 }, (_, i) => `l${i}="v"`).join(',');
    expect(outcome(`a{${labels}} 1\n# EOF\n`)).toBe('SYNTAX');
  });

  it('stays linear on pathological input (1 MB of braces, quotes, backslashes)', () => {
    const started = performance.now();
    for (const unit of ['{', 'a{x="', '\\', '"', 'a{x="1",', '#', ' ']) {
      expect(outcome(`${unit.repeat(Math.ceil(1_000_000 / unit.length))}\n# EOF\n`)).toBe('SYNTAX');
    }
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('parseOpenMetrics properties', () => {
  it('any text: a result or an OpenMetricsParseError, nothing else', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.boolean(), (text, eof) => {
        seen.add(outcome(eof ? `${text}\n# EOF\n` : text));
      }),
      { numRuns: 2000 },
    );
    expect([...seen].every((o) => ['ok', 'SYNTAX'].includes(o))).toBe(true);
  });

  it('mutated broker scrapes: a result or an OpenMetricsParseError, nothing else', () => {
    const scrape = brokerScrape();
    const seen = new Set<string>();
    const edit = fc.record({
      at: fc.nat({ max: scrape.length }),
      cut: fc.nat({ max: 8 }),
      insert: fc.string({
        unit: fc.constantFrom(
          '{',
          '}',
          '"',
          '\\',
          '=',
          ',',
          ' ',
          '\n',
          '#',
          'a',
          '1',
          'e',
          '+',
          '-',
          '.',
        ),
        maxLength: 6,
      }),
    });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 5 }), (edits) => {
        let text = scrape;
        for (const e of edits) {
          const at = Math.min(e.at, text.length);
          text = text.slice(0, at) + e.insert + text.slice(at + e.cut);
        }
        seen.add(outcome(text));
      }),
      { numRuns: 2000 },
    );
    // Both verdicts happen: the mutations reach the parser's checks and its happy path.
    expect([...seen].sort()).toEqual(['SYNTAX', 'ok']);
  });

  it('label values and counts round-trip through the renderer', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 20 }), fc.nat({ max: 1e6 })), {
          minLength: 1,
          maxLength: 10,
        }),
        (pairs) => {
          const r = createMetricsRegistry();
          const c = r.counter('rt_total', 'round trip', ['v']);
          const expected = new Map<string, number>();
          for (const [v, n] of pairs) {
            c.inc({ v }, n);
            expected.set(v, (expected.get(v) ?? 0) + n);
          }
          const family = parseOpenMetrics(r.render()).families.get('rt')!;
          expect(family.type).toBe('counter');
          expect(new Map(family.samples.map((s) => [s.labels.v!, s.value]))).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
