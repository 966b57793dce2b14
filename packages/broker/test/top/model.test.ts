// top's model from fixed samples: per-service rows, sessions/s from counter
// deltas (resets included), Hello quantiles from bucket deltas or cumulative
// buckets, refusals by code, spawn failures, and every sort order.
import { describe, expect, it } from 'vitest';
import { parseOpenMetrics } from '../../src/openmetrics-parse.js';
import {
  bucketDeltas,
  buildView,
  counterDelta,
  histogramQuantile,
  type SORT_KEYS,
  sortRows,
} from '../../src/top/model.js';
import type { TopSample } from '../../src/top/sample.js';
import { exposition, sampleAt } from './top-samples.js';

const before = sampleAt(10_000, {
  metrics: exposition({
    hello: { 'demo-kv': { handoff: 10, reconnect: 2 }, search: { handoff: 1 } },
    buckets: { 'demo-kv': [4, 10, 12], search: [1, 1, 1] },
    refused: {},
    spawn: { 'demo-kv': { ok: 1 } },
  }),
});
const after = sampleAt(12_000, {
  metrics: exposition({
    hello: { 'demo-kv': { handoff: 30, reconnect: 2, refused: 3 }, search: { handoff: 1 } },
    // demo-kv: 20 more Hellos, all of 0.5 ms (the bucket (0.25 ms, 0.5 ms]).
    buckets: { 'demo-kv': [4, 30, 32], search: [1, 1, 1] },
    refused: { 'demo-kv': { RATE_LIMITED: 1, SERVICE_UNKNOWN: 2 }, nosuch: { SERVICE_UNKNOWN: 5 } },
    spawn: { 'demo-kv': { ok: 1, failed: 2 }, search: { failed: 1 } },
  }),
});

describe('buildView', () => {
  it('one row per service defined, running, or asked for; rates over the interval', () => {
    const view = buildView(after, before, 'service');
    expect(view.intervalSeconds).toBe(2);
    expect(view.rows.map((r) => [r.service, r.defined])).toEqual([
      ['demo-kv', true],
      ['idle', true],
      ['nosuch', false],
      ['search', true],
    ]);
    const kv = view.rows[0]!;
    expect(kv.sessionsPerSecond).toBe(10);
    expect(kv.latencyWindow).toBe('interval');
    // All 20 new Hellos fell in (0.00025, 0.0005]: linear inside that bucket.
    expect(kv.helloP50).toBeCloseTo(0.00025 + 0.00025 * 0.5, 12);
    expect(kv.helloP99).toBeCloseTo(0.00025 + 0.00025 * 0.99, 12);
    expect(kv.refusals).toEqual([
      { code: 'SERVICE_UNKNOWN', count: 2 },
      { code: 'RATE_LIMITED', count: 1 },
    ]);
    expect(kv.refusedTotal).toBe(3);
    expect(kv.spawnFailures).toBe(2);
    expect(kv.daemons).toEqual([
      {
        pid: 4242,
        version: '1.0.0',
        state: 'ready',
        uptimeSeconds: 65,
        rssBytes: 50 * 1024 * 1024,
      },
      { pid: 4243, version: '1.0.0', state: 'starting', uptimeSeconds: 2, rssBytes: null },
    ]);
    expect(kv.rssBytes).toBe(50 * 1024 * 1024);
    const search = view.rows[3]!;
    // No Hello in the interval: the quantiles are of everything so far.
    expect(search.sessionsPerSecond).toBe(0);
    expect(search.latencyWindow).toBe('total');
    // Its one Hello of 50 µs, in (25 µs, 50 µs].
    expect(search.helloP50).toBeCloseTo(0.0000375, 12);
    const idle = view.rows[1]!;
    expect(idle).toMatchObject({ daemons: [], rssBytes: null, helloP50: null, refusedTotal: 0 });
  });

  it('has no rates on the first sample, and quantiles of everything', () => {
    const view = buildView(before, null, 'service');
    expect(view.intervalSeconds).toBeNull();
    expect(view.rows[0]).toMatchObject({ sessionsPerSecond: null, latencyWindow: 'total' });
  });

  it('a broker restarted between samples (counters went down) counts from zero', () => {
    const restarted = sampleAt(13_000, {
      metrics: exposition({
        hello: { 'demo-kv': { handoff: 4 } },
        buckets: { 'demo-kv': [1, 4, 4] },
        refused: {},
        spawn: {},
      }),
    });
    const kv = buildView(restarted, after, 'service').rows[0]!;
    expect(kv.sessionsPerSecond).toBe(4);
    expect(kv.latencyWindow).toBe('interval');
  });

  it('sorts by every key: name ascending, numbers biggest first, ties by name', () => {
    const rows = buildView(after, before, 'service').rows;
    const order = (key: (typeof SORT_KEYS)[number]) => sortRows(rows, key).map((r) => r.service);
    expect(order('service')).toEqual(['demo-kv', 'idle', 'nosuch', 'search']);
    expect(order('daemons')).toEqual(['demo-kv', 'idle', 'nosuch', 'search']);
    expect(order('refused')).toEqual(['nosuch', 'demo-kv', 'idle', 'search']);
    expect(order('spawn_failed')).toEqual(['demo-kv', 'search', 'idle', 'nosuch']);
    expect(order('sessions')).toEqual(['demo-kv', 'idle', 'nosuch', 'search']);
    expect(order('p99')).toEqual(['demo-kv', 'search', 'idle', 'nosuch']);
    expect(order('rss')[0]).toBe('demo-kv');
    expect(buildView(after, before, 'refused').rows[0]!.service).toBe('nosuch');
  });
});

describe('histogram arithmetic', () => {
  const b = (pairs: [number, number][]) => pairs.map(([le, count]) => ({ le, count }));

  it('quantiles interpolate inside a bucket; +Inf gives the highest finite bound', () => {
    const buckets = b([
      [1, 10],
      [2, 20],
      [Number.POSITIVE_INFINITY, 21],
    ]);
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(1 + 0.05, 12);
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(0.525, 12);
    expect(histogramQuantile(0.99, buckets)).toBe(2);
    expect(histogramQuantile(0.5, b([[Number.POSITIVE_INFINITY, 0]]))).toBeNull();
    expect(histogramQuantile(0.5, [])).toBeNull();
    // Empty leading buckets do not pull the quantile down to 0.
    expect(
      histogramQuantile(
        0,
        b([
          [1, 0],
          [2, 4],
          [Number.POSITIVE_INFINITY, 4],
        ]),
      ),
    ).toBe(1);
  });

  it('deltas subtract bucket by bucket, and take a reset whole', () => {
    const earlier = b([
      [1, 2],
      [Number.POSITIVE_INFINITY, 3],
    ]);
    expect(
      bucketDeltas(
        b([
          [1, 5],
          [Number.POSITIVE_INFINITY, 9],
        ]),
        earlier,
      ),
    ).toEqual(
      b([
        [1, 3],
        [Number.POSITIVE_INFINITY, 6],
      ]),
    );
    expect(
      bucketDeltas(
        b([
          [1, 1],
          [Number.POSITIVE_INFINITY, 1],
        ]),
        earlier,
      ),
    ).toEqual(
      b([
        [1, 1],
        [Number.POSITIVE_INFINITY, 1],
      ]),
    );
    expect(counterDelta(5, 3)).toBe(2);
    expect(counterDelta(1, 3)).toBe(1);
  });
});

it('parses the fixture expositions the way the broker renders them', () => {
  const sample: TopSample = after;
  expect(
    parseOpenMetrics(exposition({ hello: {}, buckets: {}, refused: {}, spawn: {} })),
  ).toBeTruthy();
  expect(sample.metrics.families.get('hello_duration_seconds')?.type).toBe('histogram');
});
