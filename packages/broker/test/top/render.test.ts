// top's renderer from fixed samples: the exact text table (extra daemons,
// unknown names, cumulative-latency marks, width cuts, a problem line, no
// services) and the exact JSON document of --once --json.
import { describe, expect, it } from 'vitest';
import { buildView } from '../../src/top/model.js';
import {
  formatBytes,
  formatSeconds,
  formatUptime,
  renderJson,
  renderText,
} from '../../src/top/render.js';
import { exposition, sampleAt } from './top-samples.js';

const before = sampleAt(10_000, {
  metrics: exposition({
    hello: { 'demo-kv': { handoff: 10 } },
    buckets: { 'demo-kv': [4, 10, 10], search: [1, 1, 1] },
    refused: {},
    spawn: {},
  }),
});
const after = sampleAt(12_000, {
  metrics: exposition({
    hello: { 'demo-kv': { handoff: 30 } },
    buckets: { 'demo-kv': [4, 30, 30], search: [1, 1, 1] },
    refused: { 'demo-kv': { RATE_LIMITED: 1 }, nosuch: { SERVICE_UNKNOWN: 5 } },
    spawn: { search: { failed: 1 } },
  }),
});

describe('renderText', () => {
  it('draws one line per service, one more per extra daemon, and the notes', () => {
    expect(renderText(buildView(after, before, 'refused'), { keysHint: true })).toBe(
      [
        'handoff-broker top  2026-12-03T10:00:12Z  4 services, 2 daemons  (last 2.0 s, sort: refused)',
        'keys: s/S next/previous sort, 1-8 sort column, q quit',
        '',
        'SERVICE  DAEMONS  PID   UPTIME  RSS    SESS/S  P50    P99    REFUSED  SPAWN_FAIL  REFUSALS BY CODE',
        'nosuch?  0        -     -       -      0.0     -      -      5        0           SERVICE_UNKNOWN:5',
        'demo-kv  2        4242  1m05s   50.0M  10.0    375us  498us  1        0           RATE_LIMITED:1',
        '                  4243  2s      -',
        'idle     0        -     -       -      0.0     -      -      0        0',
        'search   0        -     -       -      0.0     38us*  50us*  0        1',
        '',
        '* since the broker started: no Hellos in the last interval',
        '? not a defined service: only asked for',
        '',
      ].join('\n'),
    );
  });

  it('first sample: no rates; a problem line; lines cut to the width', () => {
    const text = renderText(buildView(before, null, 'service'), {
      width: 40,
      problem: 'cannot reach the broker at /x (ECONNREFUSED)',
    });
    expect(text.split('\n').slice(0, 5)).toEqual([
      'handoff-broker top  2026-12-03T10:00:10Z',
      '! cannot reach the broker at /x (ECONNRE',
      '',
      'SERVICE  DAEMONS  PID   UPTIME  RSS    S',
      'demo-kv  2        4242  1m05s   50.0M  -',
    ]);
    expect(text.split('\n').every((l) => l.length <= 40)).toBe(true);
  });

  it('says so when there is nothing to show', () => {
    const empty = { ...sampleAt(0, { metrics: '# EOF\n' }), services: [], daemons: [] };
    expect(renderText(buildView(empty, null, 'service'))).toBe(
      [
        'handoff-broker top  2026-12-03T10:00:00Z  0 services, 0 daemons  (first sample, sort: service)',
        '',
        'SERVICE  DAEMONS  PID  UPTIME  RSS  SESS/S  P50  P99  REFUSED  SPAWN_FAIL  REFUSALS BY CODE',
        '(no services defined and no Hellos seen)',
        '',
      ].join('\n'),
    );
  });

  it('formats durations, uptimes and sizes', () => {
    expect([0.000012, 0.00099, 0.0025, 0.99, 1.5].map(formatSeconds)).toEqual([
      '12us',
      '990us',
      '2.50ms',
      '990.00ms',
      '1.50s',
    ]);
    expect([0, 59.9, 60, 3599, 3600, 86_399, 90_000].map(formatUptime)).toEqual([
      '0s',
      '59s',
      '1m00s',
      '59m59s',
      '1h00m',
      '23h59m',
      '1d01h',
    ]);
    expect([null, 1000, 1024 * 1024, 1.5 * 1024 ** 3].map(formatBytes)).toEqual([
      '-',
      '1K',
      '1.0M',
      '1.50G',
    ]);
  });
});

describe('renderJson', () => {
  it('is one document with ok, code, message and every figure', () => {
    const doc = JSON.parse(renderJson(buildView(after, before, 'service')));
    expect(Object.keys(doc).slice(0, 4)).toEqual(['schema_version', 'ok', 'code', 'message']);
    expect(doc).toMatchObject({
      schema_version: 1,
      ok: true,
      code: 'OK',
      message: '4 services',
      at_unix_ms: Date.UTC(2026, 11, 3, 10, 0, 12),
      interval_seconds: 2,
      sort: 'service',
    });
    expect(doc.services.map((s: { service: string }) => s.service)).toEqual([
      'demo-kv',
      'idle',
      'nosuch',
      'search',
    ]);
    expect(doc.services[0]).toEqual({
      service: 'demo-kv',
      defined: true,
      daemons: [
        { pid: 4242, version: '1.0.0', state: 'ready', uptime_seconds: 65, rss_bytes: 52_428_800 },
        { pid: 4243, version: '1.0.0', state: 'starting', uptime_seconds: 2, rss_bytes: null },
      ],
      rss_bytes: 52_428_800,
      sessions_per_second: 10,
      hello_p50_seconds: 0.000375,
      hello_p99_seconds: 0.0004975,
      latency_window: 'interval',
      refusals: { RATE_LIMITED: 1 },
      refused_total: 1,
      spawn_failures: 0,
    });
    expect(doc.services[2]).toMatchObject({ defined: false, refusals: { SERVICE_UNKNOWN: 5 } });
  });
});
