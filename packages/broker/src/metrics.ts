// A metrics registry as a value (no module-level state: two brokers in one
// process, or two copies of this package, never share series) and its
// OpenMetrics 1.0 text rendering; then the broker's own metric set. It owns
// names, labels and rendering — not serving them (the METRICS admin verb does).
// test/metrics-names.test.ts pins every family's name, type and labels.
import { readdirSync, readFileSync } from 'node:fs';
import { BrokerError } from './errors.js';
import { SeriesMap } from './metrics-series.js';

/** What an OpenMetrics scrape is served as. */
export const OPENMETRICS_CONTENT_TYPE =
  'application/openmetrics-text; version=1.0.0; charset=utf-8';

export type MetricsErrorCode = 'INVALID_NAME' | 'DUPLICATE_NAME' | 'LABELS' | 'BUCKETS' | 'VALUE';

export class MetricsError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:MetricsError';
  override readonly name = 'MetricsError';
  declare readonly code: MetricsErrorCode;
  /** The metric family concerned. */
  readonly metric: string;
  constructor(code: MetricsErrorCode, metric: string, message: string) {
    super(code, message);
    this.metric = metric;
  }
}

/** Label values by label name; exactly the names the metric was declared with. */
export type Labels = Readonly<Record<string, string>>;

export interface Counter {
  /** Adds `amount` (default 1, must be ≥ 0: a counter never goes down). */
  inc(labels?: Labels, amount?: number): void;
  value(labels?: Labels): number;
}

export interface Gauge {
  set(value: number, labels?: Labels): void;
  inc(labels?: Labels, amount?: number): void;
  dec(labels?: Labels, amount?: number): void;
  value(labels?: Labels): number;
}

export interface Histogram {
  observe(value: number, labels?: Labels): void;
}

export interface GaugeSample {
  labels: Labels;
  value: number;
}

/**
 * Evaluated at render time. A number is the sample of an unlabelled gauge;
 * `undefined` means "no value now" (the series is left out of the scrape).
 */
export type GaugeCollector = () => number | undefined | readonly GaugeSample[];

export interface MetricsRegistry {
  /** `name` may end in `_total`; the family is named without it, samples with it. */
  counter(name: string, help: string, labelNames?: readonly string[]): Counter;
  gauge(
    name: string,
    help: string,
    labelNames?: readonly string[],
    collect?: GaugeCollector,
  ): Gauge;
  /** `buckets`: strictly increasing finite upper bounds; `+Inf` is added. */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ): Histogram;
  /** The whole registry in OpenMetrics text format, ending with `# EOF\n`. */
  render(): string;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Family {
  readonly name: string;
  render(out: string[]): void;
}

export function createMetricsRegistry(): MetricsRegistry {
  const families = new Map<string, Family>();
  // Sample names a family renders: a gauge `x_total` and a counter `x` would
  // render the same line, so both names are reserved per family.
  const sampleNames = new Set<string>();

  const register = (family: Family, names: string[]) => {
    if (families.has(family.name) || names.some((n) => sampleNames.has(n))) {
      throw new MetricsError(
        'DUPLICATE_NAME',
        family.name,
        `metric ${family.name} is already registered`,
      );
    }
    families.set(family.name, family);
    for (const n of names) sampleNames.add(n);
  };

  return {
    counter(name, help, labelNames = []) {
      const family = name.endsWith('_total') ? name.slice(0, -'_total'.length) : name;
      checkNames(family, labelNames);
      const series = seriesOf<{ value: number }>(family, labelNames, () => ({ value: 0 }));
      register(
        {
          name: family,
          render(out) {
            header(out, family, 'counter', help);
            for (const [key, s] of series.entries())
              out.push(`${family}_total${labelText(labelNames, key)} ${formatValue(s.value)}`);
          },
        },
        [family, `${family}_total`, `${family}_created`],
      );
      return {
        inc(labels?: Labels, amount = 1) {
          if (!(amount >= 0) || !Number.isFinite(amount)) {
            throw new MetricsError(
              'VALUE',
              family,
              `counter ${family} can only grow by a finite amount ≥ 0, not ${amount}`,
            );
          }
          series.get(labels).value += amount;
        },
        value: (labels?: Labels) => series.peek(labels)?.value ?? 0,
      };
    },

    gauge(name, help, labelNames = [], collect) {
      checkNames(name, labelNames);
      const series = seriesOf<{ value: number }>(name, labelNames, () => ({ value: 0 }));
      register(
        {
          name,
          render(out) {
            header(out, name, 'gauge', help);
            for (const sample of gaugeSamples(name, labelNames, series, collect)) {
              const key = series.keyOf(sample.labels);
              out.push(`${name}${labelText(labelNames, key)} ${formatValue(sample.value)}`);
            }
          },
        },
        [name],
      );
      return {
        set: (value, labels?: Labels) => {
          series.get(labels).value = value;
        },
        inc: (labels?: Labels, amount = 1) => {
          series.get(labels).value += amount;
        },
        dec: (labels?: Labels, amount = 1) => {
          series.get(labels).value -= amount;
        },
        value: (labels?: Labels) => series.peek(labels)?.value ?? 0,
      };
    },

    histogram(name, help, labelNames, buckets) {
      checkNames(name, labelNames);
      if (labelNames.includes('le'))
        throw new MetricsError('LABELS', name, `histogram ${name} cannot have a label named "le"`);
      checkBuckets(name, buckets);
      const bounds = [...buckets];
      const series = seriesOf<{ counts: number[]; sum: number; count: number }>(
        name,
        labelNames,
        () => ({ counts: bounds.map(() => 0), sum: 0, count: 0 }),
      );
      register(
        {
          name,
          render(out) {
            header(out, name, 'histogram', help);
            for (const [key, s] of series.entries()) {
              // Stored per bucket, exposed cumulatively as OpenMetrics requires.
              let cumulative = 0;
              bounds.forEach((bound, i) => {
                cumulative += s.counts[i] ?? 0;
                out.push(
                  `${name}_bucket${labelText(labelNames, key, ['le', formatBound(bound)])} ${cumulative}`,
                );
              });
              out.push(`${name}_bucket${labelText(labelNames, key, ['le', '+Inf'])} ${s.count}`);
              out.push(`${name}_sum${labelText(labelNames, key)} ${formatValue(s.sum)}`);
              out.push(`${name}_count${labelText(labelNames, key)} ${s.count}`);
            }
          },
        },
        [name, `${name}_bucket`, `${name}_sum`, `${name}_count`, `${name}_created`],
      );
      return {
        observe(value, labels?: Labels) {
          if (Number.isNaN(value))
            throw new MetricsError('VALUE', name, `histogram ${name} cannot observe NaN`);
          const s = series.get(labels);
          // A loop rather than findIndex: no closure per observation.
          let i = 0;
          while (i < bounds.length && !(value <= bounds[i]!)) i++;
          if (i < bounds.length) s.counts[i] = (s.counts[i] ?? 0) + 1;
          s.sum += value;
          s.count += 1;
        },
      };
    },

    render() {
      const out: string[] = [];
      for (const family of families.values()) family.render(out);
      out.push('# EOF');
      return `${out.join('\n')}\n`;
    },
  };
}

/** A family's series; labels other than exactly `labelNames` are a LABELS error. */
function seriesOf<T>(metric: string, labelNames: readonly string[], fresh: () => T): SeriesMap<T> {
  return new SeriesMap(labelNames, fresh, (labels) => {
    const given = Object.keys(labels).join(', ');
    return new MetricsError(
      'LABELS',
      metric,
      `${metric} takes labels {${labelNames.join(', ')}}, got {${given}}`,
    );
  });
}

function gaugeSamples(
  name: string,
  labelNames: readonly string[],
  series: SeriesMap<{ value: number }>,
  collect: GaugeCollector | undefined,
): readonly GaugeSample[] {
  if (!collect) {
    return [...series.entries()].map(([values, s]) => ({
      labels: Object.fromEntries(labelNames.map((n, i) => [n, values[i] ?? ''])),
      value: s.value,
    }));
  }
  let collected: ReturnType<GaugeCollector>;
  try {
    collected = collect();
  } catch {
    // One unreadable gauge must not fail the whole scrape: its series is
    // left out, which a scraper reads as "no value now".
    return [];
  }
  if (collected === undefined) return [];
  if (typeof collected === 'number') {
    if (labelNames.length > 0) {
      throw new MetricsError(
        'LABELS',
        name,
        `collector of labelled gauge ${name} must return samples with labels`,
      );
    }
    return [{ labels: {}, value: collected }];
  }
  return collected;
}

function checkNames(name: string, labelNames: readonly string[]): void {
  if (!METRIC_NAME.test(name))
    throw new MetricsError('INVALID_NAME', name, `invalid metric name ${JSON.stringify(name)}`);
  for (const label of labelNames) {
    // Names starting with "__" are reserved for the scraper's own use.
    if (!LABEL_NAME.test(label) || label.startsWith('__')) {
      throw new MetricsError(
        'INVALID_NAME',
        name,
        `invalid label name ${JSON.stringify(label)} on ${name}`,
      );
    }
  }
  if (new Set(labelNames).size !== labelNames.length)
    throw new MetricsError('LABELS', name, `${name} declares a label name twice`);
}

function checkBuckets(name: string, buckets: readonly number[]): void {
  if (buckets.length === 0)
    throw new MetricsError('BUCKETS', name, `histogram ${name} needs at least one bucket`);
  buckets.forEach((bound, i) => {
    const previous = buckets[i - 1];
    if (!Number.isFinite(bound) || (previous !== undefined && bound <= previous)) {
      throw new MetricsError(
        'BUCKETS',
        name,
        `histogram ${name} buckets must be finite and strictly increasing (${buckets.join(', ')})`,
      );
    }
  });
}

function header(out: string[], name: string, type: string, help: string): void {
  out.push(`# TYPE ${name} ${type}`);
  if (help !== '') out.push(`# HELP ${name} ${escapeText(help)}`);
}

/** Escaping for label values and HELP text: backslash, double quote, newline. */
export function escapeText(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function labelText(names: readonly string[], values: string[], extra?: [string, string]): string {
  const pairs = names.map((n, i) => `${n}="${escapeText(values[i] ?? '')}"`);
  if (extra) pairs.push(`${extra[0]}="${extra[1]}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/**
 * `le` values in canonical float form ("1.0", not "1"): OpenMetrics asks for
 * it so the same bound always renders as the same label value.
 */
function formatBound(bound: number): string {
  const text = String(bound);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

// --- The broker's metrics ---------------------------------------------------

/**
 * Hello handling is budgeted at p50 ≤ 200 µs and p99 ≤ 1 ms (DESIGN §4), so
 * the buckets resolve 25 µs … 1 s in 1-2.5-5 steps (about 2.2× apart).
 */
export const HELLO_DURATION_BUCKETS: readonly number[] = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1,
];

/** Handoffs are sub-millisecond when healthy but wait up to the 5 s ack deadline. */
export const HANDOFF_DURATION_BUCKETS: readonly number[] = [...HELLO_DURATION_BUCKETS, 2.5, 5];

export interface BrokerMetrics {
  /** Labels: service, outcome (`negotiated`, or the Refused code in lower case). */
  readonly helloTotal: Counter;
  /** Receiving a Hello to writing its reply, in seconds. Labels: service (`""` before it is known). */
  readonly helloDuration: Histogram;
  /** Labels: service, code (the Refused code's name: refusal-label.ts). */
  readonly helloRefusedTotal: Counter;
  /** Labels: outcome (`accepted`, `rejected`, `fallback`, …). */
  readonly handoffTotal: Counter;
  /** Offer sent to ack received, in seconds. */
  readonly handoffDuration: Histogram;
  readonly activeBackends: Gauge;
  /** Labels: service, outcome (`ok`, `failed`, `rate_limited`). */
  readonly spawnAttemptsTotal: Counter;
  readonly connectionsOpen: Gauge;
  /** Sessions that skipped the broker through a client's endpoint cache, as clients report them (cache-sessions.ts). Labels: service. */
  readonly endpointCacheSessionsTotal: Counter;
}

export interface BrokerMetricsOptions {
  /** Monotonic clock in ms (default `performance.now`). */
  now?: () => number;
  /** When the broker started, on the `now` clock (default: now). */
  startedAtMs?: number;
  /** Where /proc/self is (tests point it elsewhere). */
  procSelf?: string;
}

export function createBrokerMetrics(
  registry: MetricsRegistry,
  options: BrokerMetricsOptions = {},
): BrokerMetrics {
  const now = options.now ?? (() => performance.now());
  const startedAtMs = options.startedAtMs ?? now();
  const procSelf = options.procSelf ?? '/proc/self';
  const metrics: BrokerMetrics = {
    helloTotal: registry.counter('hello_total', 'Hello requests handled, by service and outcome.', [
      'service',
      'outcome',
    ]),
    helloDuration: registry.histogram(
      'hello_duration_seconds',
      'Time from a Hello frame received to its reply written, by service.',
      ['service'],
      HELLO_DURATION_BUCKETS,
    ),
    helloRefusedTotal: registry.counter(
      'hello_refused_total',
      'Hellos answered with Refused, by service and refusal code.',
      ['service', 'code'],
    ),
    handoffTotal: registry.counter('handoff_total', 'Connection handoffs, by outcome.', [
      'outcome',
    ]),
    handoffDuration: registry.histogram(
      'handoff_duration_seconds',
      'Time from a handoff offer sent to its ack received.',
      [],
      HANDOFF_DURATION_BUCKETS,
    ),
    activeBackends: registry.gauge('active_backends', 'Backends currently known to the broker.'),
    spawnAttemptsTotal: registry.counter(
      'spawn_attempts_total',
      'Backend spawn attempts, by service and outcome.',
      ['service', 'outcome'],
    ),
    connectionsOpen: registry.gauge(
      'connections_open',
      'Client connections the broker currently holds.',
    ),
    endpointCacheSessionsTotal: registry.counter(
      'endpoint_cache_sessions_total',
      'Sessions that went straight to a daemon through a client endpoint cache, by service (reported by clients).',
      ['service'],
    ),
  };
  registry.gauge(
    'fd_usage_ratio',
    'Open file descriptors divided by the soft RLIMIT_NOFILE.',
    [],
    () => fdUsageRatio(procSelf),
  );
  registry.gauge(
    'uptime_seconds',
    'Seconds since the broker started.',
    [],
    () => (now() - startedAtMs) / 1000,
  );
  return metrics;
}

/** Open fds ÷ soft fd limit, or undefined where /proc cannot tell (not Linux). */
export function fdUsageRatio(procSelf = '/proc/self'): number | undefined {
  const limit = parseSoftNofileLimit(readFileSync(`${procSelf}/limits`, 'utf8'));
  if (limit === undefined || limit === 0) return undefined;
  return openFdCount(procSelf) / limit;
}

/** Entries of `<procSelf>/fd`, less the one fd that listing it opens. */
export function openFdCount(procSelf = '/proc/self'): number {
  const entries = readdirSync(`${procSelf}/fd`).length;
  // scandir holds the directory open while reading it, so it lists itself;
  // only for the live /proc/self is that an fd we would not otherwise have.
  return procSelf === '/proc/self' ? Math.max(0, entries - 1) : entries;
}

/** The soft "Max open files" of a /proc/<pid>/limits text; undefined when unlimited or absent. */
export function parseSoftNofileLimit(limits: string): number | undefined {
  const match = /^Max open files\s+(\S+)/m.exec(limits);
  if (!match?.[1] || match[1] === 'unlimited') return undefined;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) ? value : undefined;
}
