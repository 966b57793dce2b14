import { mkdirSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createBrokerMetrics,
  createMetricsRegistry,
  fdUsageRatio,
  HELLO_DURATION_BUCKETS,
  MetricsError,
  OPENMETRICS_CONTENT_TYPE,
  openFdCount,
  parseSoftNofileLimit,
} from '../src/metrics.js';
import { tempDir } from './admin-harness.js';

const tmp = tempDir('metrics');
afterAll(() => tmp.remove());

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: string;
}

/**
 * A small, strict OpenMetrics text parser — written for these tests from
 * the format, not from the renderer — so rendering is checked by reading
 * it back rather than by comparing with itself.
 */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  if (!text.endsWith('# EOF\n')) throw new Error('missing # EOF');
  const lines = text.slice(0, -'# EOF\n'.length).split('\n');
  lines.pop(); // the newline before # EOF
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of lines) {
    if (line.startsWith('# TYPE ')) {
      const [name, type, ...rest] = line.slice('# TYPE '.length).split(' ');
      if (!name || !type || rest.length > 0) throw new Error(`bad TYPE line ${line}`);
      types.set(name, type);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('#')) throw new Error(`unexpected comment ${line}`);
    let i = 0;
    while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i]!)) i++;
    const name = line.slice(0, i);
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      while (line[i] !== '}') {
        const eq = line.indexOf('=', i);
        const label = line.slice(i, eq);
        if (line[eq + 1] !== '"') throw new Error(`unquoted label value in ${line}`);
        i = eq + 2;
        let value = '';
        for (;;) {
          const c = line[i++];
          if (c === undefined) throw new Error(`unterminated label value in ${line}`);
          if (c === '"') break;
          if (c === '\\') {
            const e = line[i++];
            if (e === 'n') value += '\n';
            else if (e === '\\' || e === '"') value += e;
            else throw new Error(`bad escape \\${e} in ${line}`);
          } else {
            value += c;
          }
        }
        labels[label] = value;
        if (line[i] === ',') i++;
      }
      i++;
    }
    if (line[i] !== ' ') throw new Error(`no space before the value in ${line}`);
    samples.push({ name, labels, value: line.slice(i + 1) });
  }
  return { types, samples };
}

describe('createMetricsRegistry rendering', () => {
  it('renders an empty registry as just # EOF', () => {
    expect(createMetricsRegistry().render()).toBe('# EOF\n');
  });

  it('renders counters with _total, gauges, and labels in declaration order', () => {
    const r = createMetricsRegistry();
    const hello = r.counter('hello_total', 'Hellos handled.', ['service', 'outcome']);
    const open = r.gauge('connections_open', 'Open connections.');
    hello.inc({ outcome: 'negotiated', service: 'demo-kv' });
    hello.inc({ service: 'demo-kv', outcome: 'negotiated' }, 2);
    hello.inc({ service: 'search', outcome: 'service_unknown' });
    open.set(5);
    open.dec();
    expect(r.render()).toBe(
      [
        '# TYPE hello counter',
        '# HELP hello Hellos handled.',
        'hello_total{service="demo-kv",outcome="negotiated"} 3',
        'hello_total{service="search",outcome="service_unknown"} 1',
        '# TYPE connections_open gauge',
        '# HELP connections_open Open connections.',
        'connections_open 4',
        '# EOF',
        '',
      ].join('\n'),
    );
    expect(hello.value({ service: 'demo-kv', outcome: 'negotiated' })).toBe(3);
  });

  it('renders a histogram with cumulative buckets, +Inf, _sum and _count', () => {
    const r = createMetricsRegistry();
    const h = r.histogram('hello_duration_seconds', 'Hello latency.', [], [0.001, 0.01, 1]);
    for (const v of [0.0005, 0.001, 0.005, 0.5, 2]) h.observe(v);
    expect(r.render()).toBe(
      [
        '# TYPE hello_duration_seconds histogram',
        '# HELP hello_duration_seconds Hello latency.',
        'hello_duration_seconds_bucket{le="0.001"} 2',
        'hello_duration_seconds_bucket{le="0.01"} 3',
        'hello_duration_seconds_bucket{le="1.0"} 4',
        'hello_duration_seconds_bucket{le="+Inf"} 5',
        'hello_duration_seconds_sum 2.5065',
        'hello_duration_seconds_count 5',
        '# EOF',
        '',
      ].join('\n'),
    );
  });

  it('escapes backslash, double quote and newline in label values and help', () => {
    const r = createMetricsRegistry();
    r.counter('odd', 'a "quoted"\\help\nline', ['v']).inc({ v: 'a\\b"c\nd' });
    expect(r.render()).toBe(
      [
        '# TYPE odd counter',
        '# HELP odd a \\"quoted\\"\\\\help\\nline',
        'odd_total{v="a\\\\b\\"c\\nd"} 1',
        '# EOF',
        '',
      ].join('\n'),
    );
  });

  it('evaluates a gauge collector at render time, and leaves out a failing one', () => {
    const r = createMetricsRegistry();
    let n = 1;
    r.gauge('calls', 'Renders so far.', [], () => n++);
    r.gauge('broken', 'Always throws.', [], () => {
      throw new Error('nope');
    });
    r.gauge('by_state', 'Per state.', ['state'], () => [
      { labels: { state: 'ready' }, value: 2 },
      { labels: { state: 'starting' }, value: 0.5 },
    ]);
    expect(r.render()).toContain('calls 1\n');
    const second = r.render();
    expect(second).toContain('calls 2\n');
    expect(second).toContain('# TYPE broken gauge\n# HELP broken Always throws.\n# TYPE by_state');
    expect(second).toContain('by_state{state="ready"} 2\nby_state{state="starting"} 0.5\n');
  });

  it('renders special values as OpenMetrics spells them', () => {
    const r = createMetricsRegistry();
    const g = r.gauge('g', '', ['k']);
    g.set(Number.POSITIVE_INFINITY, { k: 'a' });
    g.set(Number.NEGATIVE_INFINITY, { k: 'b' });
    g.set(Number.NaN, { k: 'c' });
    expect(r.render()).toBe('# TYPE g gauge\ng{k="a"} +Inf\ng{k="b"} -Inf\ng{k="c"} NaN\n# EOF\n');
  });

  it('refuses wrong labels, bad names, duplicates, bad buckets and negative counter steps', () => {
    const r = createMetricsRegistry();
    const c = r.counter('c', '', ['a']);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        expect(error).toBeInstanceOf(MetricsError);
        return (error as MetricsError).code;
      }
      return 'no error';
    };
    expect(code(() => c.inc({}))).toBe('LABELS');
    expect(code(() => c.inc({ a: 'x', b: 'y' }))).toBe('LABELS');
    expect(code(() => c.inc({ a: 'x' }, -1))).toBe('VALUE');
    expect(code(() => r.counter('c_total', '', []))).toBe('DUPLICATE_NAME');
    expect(code(() => r.gauge('c_total', '', []))).toBe('DUPLICATE_NAME');
    expect(code(() => r.gauge('bad-name', ''))).toBe('INVALID_NAME');
    expect(code(() => r.gauge('g', '', ['__reserved']))).toBe('INVALID_NAME');
    expect(code(() => r.histogram('h', '', ['le'], [1]))).toBe('LABELS');
    expect(code(() => r.histogram('h', '', [], [1, 1]))).toBe('BUCKETS');
    expect(code(() => r.histogram('h', '', [], []))).toBe('BUCKETS');
    expect(code(() => r.histogram('h', '', [], [1, Number.POSITIVE_INFINITY]))).toBe('BUCKETS');
  });

  it('keeps registries apart: state belongs to the value, not the module', () => {
    const a = createMetricsRegistry();
    const b = createMetricsRegistry();
    a.counter('x', '').inc();
    b.counter('x', '');
    expect(a.render()).toContain('x_total 1');
    expect(b.render()).not.toContain('x_total');
  });

  it('exposes the OpenMetrics 1.0 content type', () => {
    expect(OPENMETRICS_CONTENT_TYPE).toBe(
      'application/openmetrics-text; version=1.0.0; charset=utf-8',
    );
  });
});

describe('rendering properties', () => {
  it('any label values round-trip through an exposition parser', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary' }), fc.string()), {
          minLength: 1,
          maxLength: 8,
        }),
        (pairs) => {
          const r = createMetricsRegistry();
          const c = r.counter('rt', 'round trip', ['a', 'b']);
          const expected = new Map<string, number>();
          for (const [a, b] of pairs) {
            c.inc({ a, b });
            const key = JSON.stringify([a, b]);
            expected.set(key, (expected.get(key) ?? 0) + 1);
          }
          const { types, samples } = parseExposition(r.render());
          expect(types.get('rt')).toBe('counter');
          const got = new Map(
            samples.map((s) => [JSON.stringify([s.labels.a, s.labels.b]), Number(s.value)]),
          );
          expect(got).toEqual(expected);
          expect(samples.every((s) => s.name === 'rt_total')).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('histogram buckets are cumulative, end at +Inf = _count, and _sum is the total', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 5, noNaN: true }), { maxLength: 200 }),
        (values) => {
          const r = createMetricsRegistry();
          const h = r.histogram('lat', '', ['route'], HELLO_DURATION_BUCKETS);
          for (const v of values) h.observe(v, { route: 'x' });
          const { samples } = parseExposition(r.render());
          const buckets = samples.filter((s) => s.name === 'lat_bucket');
          if (values.length === 0) {
            expect(samples).toEqual([]);
            return;
          }
          expect(buckets.map((b) => b.labels.le)).toEqual([
            ...HELLO_DURATION_BUCKETS.map((b) => (Number.isInteger(b) ? `${b}.0` : String(b))),
            '+Inf',
          ]);
          const counts = buckets.map((b) => Number(b.value));
          counts.forEach((count, i) => {
            const bound = i < HELLO_DURATION_BUCKETS.length ? HELLO_DURATION_BUCKETS[i]! : Infinity;
            expect(count).toBe(values.filter((v) => v <= bound).length);
            if (i > 0) expect(count).toBeGreaterThanOrEqual(counts[i - 1]!);
          });
          const count = samples.find((s) => s.name === 'lat_count')!;
          expect(Number(count.value)).toBe(values.length);
          expect(counts.at(-1)).toBe(values.length);
          const sum = Number(samples.find((s) => s.name === 'lat_sum')!.value);
          expect(sum).toBeCloseTo(
            values.reduce((a, b) => a + b, 0),
            6,
          );
        },
      ),
    );
  });
});

describe('createBrokerMetrics', () => {
  it('defines exactly the broker metric families, with real fd and uptime values', () => {
    const r = createMetricsRegistry();
    let clock = 1000;
    const m = createBrokerMetrics(r, { now: () => clock });
    clock = 4500;
    m.helloTotal.inc({ service: 'demo-kv', outcome: 'negotiated' });
    m.helloDuration.observe(0.00012, { service: 'demo-kv' });
    m.handoffTotal.inc({ outcome: 'accepted' });
    m.handoffDuration.observe(0.0004);
    m.activeBackends.set(2);
    m.spawnAttemptsTotal.inc({ service: 'demo-kv', outcome: 'ok' });
    m.connectionsOpen.inc();
    const { types, samples } = parseExposition(r.render());
    expect([...types]).toEqual([
      ['hello', 'counter'],
      ['hello_duration_seconds', 'histogram'],
      ['hello_refused', 'counter'],
      ['handoff', 'counter'],
      ['handoff_duration_seconds', 'histogram'],
      ['active_backends', 'gauge'],
      ['spawn_attempts', 'counter'],
      ['connections_open', 'gauge'],
      ['endpoint_cache_sessions', 'counter'],
      ['fd_usage_ratio', 'gauge'],
      ['uptime_seconds', 'gauge'],
    ]);
    const value = (name: string) => Number(samples.find((s) => s.name === name)?.value);
    expect(value('uptime_seconds')).toBe(3.5);
    const ratio = value('fd_usage_ratio');
    expect(ratio).toBeGreaterThan(0);
    expect(ratio).toBeLessThan(1);
    expect(value('hello_total')).toBe(1);
    expect(value('spawn_attempts_total')).toBe(1);
    expect(samples.filter((s) => s.name === 'hello_duration_seconds_bucket')).toHaveLength(16);
  });

  it('hello buckets run from 25 µs to 1 s, each step between 2x and 2.5x', () => {
    expect(HELLO_DURATION_BUCKETS[0]).toBe(0.000025);
    expect(HELLO_DURATION_BUCKETS.at(-1)).toBe(1);
    for (let i = 1; i < HELLO_DURATION_BUCKETS.length; i++) {
      const ratio = HELLO_DURATION_BUCKETS[i]! / HELLO_DURATION_BUCKETS[i - 1]!;
      expect(ratio).toBeGreaterThanOrEqual(2 - 1e-9);
      expect(ratio).toBeLessThanOrEqual(2.5 + 1e-9);
    }
  });

  it('computes fd usage from a /proc-shaped directory', () => {
    const proc = tmp.path('proc-self');
    mkdirSync(`${proc}/fd`, { recursive: true });
    for (const fd of ['0', '1', '2', '3', '4']) writeFileSync(`${proc}/fd/${fd}`, '');
    writeFileSync(
      `${proc}/limits`,
      [
        'Limit                     Soft Limit           Hard Limit           Units     ',
        'Max processes             63432                63432                processes ',
        'Max open files            20                   1048576              files     ',
        '',
      ].join('\n'),
    );
    expect(openFdCount(proc)).toBe(5);
    expect(fdUsageRatio(proc)).toBe(0.25);
  });

  it('reads the soft fd limit, and nothing for unlimited', () => {
    expect(parseSoftNofileLimit('Max open files            1024     4096     files\n')).toBe(1024);
    expect(parseSoftNofileLimit('Max open files  unlimited  unlimited  files\n')).toBeUndefined();
    expect(parseSoftNofileLimit('Max processes 10 10 processes\n')).toBeUndefined();
  });

  it('counts this process’s open fds like /proc does', async () => {
    const { readdirSync, openSync, closeSync } = await import('node:fs');
    const before = openFdCount();
    const fd = openSync('/proc/self/limits', 'r');
    expect(openFdCount()).toBe(before + 1);
    closeSync(fd);
    expect(Math.abs(openFdCount() - (readdirSync('/proc/self/fd').length - 1))).toBeLessThanOrEqual(
      1,
    );
  });
});
