// What `top` shows, computed from two samples: per service its daemons,
// sessions handed off per second, Hello p50/p99 from histogram bucket deltas
// (cumulative when the interval had no Hellos), refusals by code and spawn
// failures; and the sort orders. Pure: no I/O, no clock, no terminal.
import type { MetricFamily, ParsedMetrics } from '../openmetrics-parse.js';
import type { TopSample } from './sample.js';

/** Sort columns, in the order the digit keys 1… pick them. */
export const SORT_KEYS = [
  'service',
  'daemons',
  'rss',
  'sessions',
  'p50',
  'p99',
  'refused',
  'spawn_failed',
] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export function isSortKey(value: string): value is SortKey {
  return (SORT_KEYS as readonly string[]).includes(value);
}

export interface DaemonRow {
  pid: number | null;
  version: string;
  state: string;
  uptimeSeconds: number;
  rssBytes: number | null;
}

export interface ServiceRow {
  service: string;
  /** Whether the broker defines it (else it is only a name clients asked for). */
  defined: boolean;
  daemons: DaemonRow[];
  /** Sum over its daemons that could be read; null when none could. */
  rssBytes: number | null;
  /** Hellos routed to a daemon (handoff or reconnect) per second; null on the first sample. */
  sessionsPerSecond: number | null;
  /** Seconds; null when no Hello was ever timed. */
  helloP50: number | null;
  helloP99: number | null;
  /** Whether the quantiles are of the last interval or of everything since the broker started. */
  latencyWindow: 'interval' | 'total';
  /** Refusals since the broker started, by Refused code, most first. */
  refusals: { code: string; count: number }[];
  refusedTotal: number;
  /** Spawn attempts that failed since the broker started. */
  spawnFailures: number;
}

export interface TopView {
  atUnixMs: number;
  /** Seconds between the two samples; null on the first. */
  intervalSeconds: number | null;
  sort: SortKey;
  rows: ServiceRow[];
}

/** The view of `current`, with rates against `previous` (null: the first sample). */
export function buildView(current: TopSample, previous: TopSample | null, sort: SortKey): TopView {
  const interval =
    previous === null ? null : Math.max(0, (current.atMs - previous.atMs) / 1000) || null;
  const names = new Set<string>(current.services);
  for (const d of current.daemons) names.add(d.service);
  for (const family of ['hello', 'hello_refused', 'spawn_attempts']) {
    for (const s of familyIn(current.metrics, family)?.samples ?? []) {
      const service = s.labels.service;
      if (service) names.add(service);
    }
  }
  const defined = new Set(current.services);
  const rows = [...names].map((service) =>
    serviceRow(service, defined.has(service), current, previous, interval),
  );
  return {
    atUnixMs: current.wallMs,
    intervalSeconds: interval,
    sort,
    rows: sortRows(rows, sort),
  };
}

function serviceRow(
  service: string,
  defined: boolean,
  current: TopSample,
  previous: TopSample | null,
  interval: number | null,
): ServiceRow {
  const daemons = current.daemons
    .filter((d) => d.service === service)
    .map((d) => ({
      pid: d.pid,
      version: d.version,
      state: d.state,
      uptimeSeconds: Math.max(0, (current.wallMs - d.startedAtUnixMs) / 1000),
      rssBytes: d.rssBytes,
    }));
  const readable = daemons.filter((d) => d.rssBytes !== null);
  const routed = (m: ParsedMetrics) =>
    sum(
      m,
      'hello',
      (l) => l.service === service && (l.outcome === 'handoff' || l.outcome === 'reconnect'),
    );
  const sessionsPerSecond =
    previous === null || interval === null
      ? null
      : counterDelta(routed(current.metrics), routed(previous.metrics)) / interval;
  const nowBuckets = helloBuckets(current.metrics, service);
  const deltas =
    previous === null ? [] : bucketDeltas(nowBuckets, helloBuckets(previous.metrics, service));
  const useInterval = (deltas.at(-1)?.count ?? 0) > 0;
  const buckets = useInterval ? deltas : nowBuckets;
  const refusals = new Map<string, number>();
  for (const s of familyIn(current.metrics, 'hello_refused')?.samples ?? []) {
    if (s.labels.service !== service || s.name !== 'hello_refused_total') continue;
    const code = s.labels.code ?? '';
    refusals.set(code, (refusals.get(code) ?? 0) + s.value);
  }
  const refusalList = [...refusals]
    .filter(([, count]) => count > 0)
    .map(([code, count]) => ({ code, count }))
    .sort((a, b) => b.count - a.count || compare(a.code, b.code));
  return {
    service,
    defined,
    daemons,
    rssBytes: readable.length === 0 ? null : readable.reduce((a, d) => a + (d.rssBytes ?? 0), 0),
    sessionsPerSecond,
    helloP50: histogramQuantile(0.5, buckets),
    helloP99: histogramQuantile(0.99, buckets),
    latencyWindow: useInterval ? 'interval' : 'total',
    refusals: refusalList,
    refusedTotal: refusalList.reduce((a, r) => a + r.count, 0),
    spawnFailures: sum(
      current.metrics,
      'spawn_attempts',
      (l) => l.service === service && l.outcome === 'failed',
    ),
  };
}

/** A counter's increase; a smaller value means the counter was reset (a new broker), so all of it is new. */
export function counterDelta(now: number, before: number): number {
  return now >= before ? now - before : now;
}

export interface Bucket {
  /** Upper bound in seconds (+Infinity for the last). */
  le: number;
  /** Cumulative count of observations ≤ le. */
  count: number;
}

function helloBuckets(metrics: ParsedMetrics, service: string): Bucket[] {
  const out: Bucket[] = [];
  for (const s of familyIn(metrics, 'hello_duration_seconds')?.samples ?? []) {
    if (s.name !== 'hello_duration_seconds_bucket' || s.labels.service !== service) continue;
    const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
    if (!Number.isNaN(le)) out.push({ le, count: s.value });
  }
  return out.sort((a, b) => a.le - b.le);
}

/** Per-bucket increases between two cumulative bucket lists (a reset takes `now` whole). */
export function bucketDeltas(now: readonly Bucket[], before: readonly Bucket[]): Bucket[] {
  const reset = now.some((b) => b.count < (before.find((p) => p.le === b.le)?.count ?? 0));
  return now.map((b) => ({
    le: b.le,
    count: reset ? b.count : b.count - (before.find((p) => p.le === b.le)?.count ?? 0),
  }));
}

/**
 * The q-quantile of cumulative buckets, interpolating linearly inside the
 * bucket it falls in (as Prometheus's histogram_quantile does); the highest
 * finite bound when it falls in +Inf; null without observations.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (!(total > 0) || buckets.length === 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank && b.count > 0) {
      if (b.le === Number.POSITIVE_INFINITY) return lowerBound;
      const inBucket = b.count - lowerCount;
      if (inBucket <= 0) return b.le;
      return lowerBound + (b.le - lowerBound) * ((rank - lowerCount) / inBucket);
    }
    if (b.le !== Number.POSITIVE_INFINITY) lowerBound = b.le;
    lowerCount = b.count;
  }
  return lowerBound;
}

const sortValue: Record<SortKey, (r: ServiceRow) => number> = {
  service: () => 0,
  daemons: (r) => r.daemons.length,
  rss: (r) => r.rssBytes ?? -1,
  sessions: (r) => r.sessionsPerSecond ?? -1,
  p50: (r) => r.helloP50 ?? -1,
  p99: (r) => r.helloP99 ?? -1,
  refused: (r) => r.refusedTotal,
  spawn_failed: (r) => r.spawnFailures,
};

/** By name ascending; any other key descending (biggest first), ties by name. */
export function sortRows(rows: readonly ServiceRow[], key: SortKey): ServiceRow[] {
  const value = sortValue[key];
  return [...rows].sort((a, b) => value(b) - value(a) || compare(a.service, b.service));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function familyIn(metrics: ParsedMetrics, name: string): MetricFamily | undefined {
  return metrics.families.get(name);
}

/** The sum of a family's counter samples (`_total`) whose labels pass `match`. */
function sum(
  metrics: ParsedMetrics,
  family: string,
  match: (labels: Readonly<Record<string, string>>) => boolean,
): number {
  let total = 0;
  for (const s of familyIn(metrics, family)?.samples ?? [])
    if (s.name === `${family}_total` && match(s.labels)) total += s.value;
  return total;
}
