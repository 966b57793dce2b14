// `metrics --json` turns the broker's OpenMetrics text into JSON families
// (src/cli/metrics-json.ts): types, help, labels with escapes, histogram and
// counter suffixes, NaN and +Inf as strings; and the real registry's output.
import { describe, expect, it } from 'vitest';
import { metricsJson } from '../../src/cli/metrics-json.js';
import { createBrokerMetrics, createMetricsRegistry } from '../../src/metrics.js';

describe('metricsJson', () => {
  it('groups samples into their families with labels and values', () => {
    const families = metricsJson(
      [
        '# TYPE hello counter',
        '# HELP hello Hellos handled, by \\"service\\".',
        'hello_total{service="a\\\\b",outcome="ok"} 3',
        'hello_created{service="a\\\\b",outcome="ok"} 1.7e9',
        '# TYPE rtt_seconds histogram',
        'rtt_seconds_bucket{le="0.5"} 1',
        'rtt_seconds_bucket{le="+Inf"} 2',
        'rtt_seconds_count 2',
        'rtt_seconds_sum 0.75',
        '# TYPE odd gauge',
        'odd{k="nan"} NaN',
        'odd{k="inf"} +Inf',
        '# EOF',
        '',
      ].join('\n'),
    );
    expect(families).toEqual([
      {
        name: 'hello',
        type: 'counter',
        help: 'Hellos handled, by "service".',
        samples: [
          { name: 'hello_total', labels: { service: 'a\\b', outcome: 'ok' }, value: 3 },
          { name: 'hello_created', labels: { service: 'a\\b', outcome: 'ok' }, value: 1.7e9 },
        ],
      },
      {
        name: 'rtt_seconds',
        type: 'histogram',
        help: '',
        samples: [
          { name: 'rtt_seconds_bucket', labels: { le: '0.5' }, value: 1 },
          { name: 'rtt_seconds_bucket', labels: { le: '+Inf' }, value: 2 },
          { name: 'rtt_seconds_count', labels: {}, value: 2 },
          { name: 'rtt_seconds_sum', labels: {}, value: 0.75 },
        ],
      },
      {
        name: 'odd',
        type: 'gauge',
        help: '',
        samples: [
          { name: 'odd', labels: { k: 'nan' }, value: 'NaN' },
          { name: 'odd', labels: { k: 'inf' }, value: '+Inf' },
        ],
      },
    ]);
  });

  it('reads every family the broker renders, each with a type and a help text', () => {
    const registry = createMetricsRegistry();
    const metrics = createBrokerMetrics(registry);
    metrics.helloTotal.inc({ service: 'echo', outcome: 'handoff' });
    const families = metricsJson(registry.render());
    expect(families.length).toBeGreaterThan(3);
    for (const f of families) {
      expect(f.type, f.name).not.toBe('unknown');
      expect(f.help, f.name).not.toBe('');
    }
    const hello = families.find((f) => f.samples.some((s) => s.name === 'hello_total'));
    expect(hello?.samples).toContainEqual({
      name: 'hello_total',
      labels: { service: 'echo', outcome: 'handoff' },
      value: 1,
    });
  });
});
