// Fixed samples for top's model and renderer tests: expositions written the
// way the broker renders them (through its real registry), and daemons with
// known pids, start times and RSS.
import { createBrokerMetrics, createMetricsRegistry } from '../../src/metrics.js';
import { parseOpenMetrics } from '../../src/openmetrics-parse.js';
import type { TopSample } from '../../src/top/sample.js';

export interface Counts {
  hello: Record<string, Record<string, number>>;
  /** Cumulative counts of Hellos of ≤ 50 µs, ≤ 0.5 ms, and all (the rest took 5 s). */
  buckets: Record<string, [number, number, number]>;
  refused: Record<string, Record<string, number>>;
  spawn: Record<string, Record<string, number>>;
}

/** An exposition with exactly these counts, rendered by the broker's registry. */
export function exposition(counts: Counts): string {
  const r = createMetricsRegistry();
  const m = createBrokerMetrics(r, { now: () => 0 });
  for (const [service, outcomes] of Object.entries(counts.hello))
    for (const [outcome, n] of Object.entries(outcomes)) m.helloTotal.inc({ service, outcome }, n);
  for (const [service, [a, b, inf]] of Object.entries(counts.buckets)) {
    for (let i = 0; i < a; i++) m.helloDuration.observe(0.00005, { service });
    for (let i = 0; i < b - a; i++) m.helloDuration.observe(0.0005, { service });
    for (let i = 0; i < inf - b; i++) m.helloDuration.observe(5, { service });
  }
  for (const [service, codes] of Object.entries(counts.refused))
    for (const [code, n] of Object.entries(codes)) m.helloRefusedTotal.inc({ service, code }, n);
  for (const [service, outcomes] of Object.entries(counts.spawn))
    for (const [outcome, n] of Object.entries(outcomes))
      m.spawnAttemptsTotal.inc({ service, outcome }, n);
  return r.render();
}

/** 2026-12-03T10:00:00Z: where the fixtures' wall clock stands at atMs 0. */
export const WALL0 = Date.UTC(2026, 11, 3, 10, 0, 0);

export function sampleAt(atMs: number, parts: { metrics: string }): TopSample {
  const wallMs = WALL0 + atMs;
  return {
    atMs,
    wallMs,
    services: ['demo-kv', 'idle', 'search'],
    daemons: [
      {
        service: 'demo-kv',
        version: '1.0.0',
        pid: 4242,
        state: 'ready',
        startedAtUnixMs: wallMs - 65_000,
        rssBytes: 50 * 1024 * 1024,
      },
      {
        service: 'demo-kv',
        version: '1.0.0',
        pid: 4243,
        state: 'starting',
        startedAtUnixMs: wallMs - 2000,
        rssBytes: null,
      },
    ],
    metrics: parseOpenMetrics(parts.metrics),
  };
}
