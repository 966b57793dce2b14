// The broker's OpenMetrics exposition as scrapers see it, pinned: every
// family's name and type, and each sample name with its label names. A
// rename or a new label shows up here as a diff, never silently.

/** One line per family: `family type sample{labels} …`, in exposition order. */
export const BROKER_METRICS_GOLDEN: readonly string[] = [
  'hello counter hello_total{service,outcome}',
  'hello_duration_seconds histogram hello_duration_seconds_bucket{service,le} hello_duration_seconds_sum{service} hello_duration_seconds_count{service}',
  'hello_refused counter hello_refused_total{service,code}',
  'handoff counter handoff_total{outcome}',
  'handoff_duration_seconds histogram handoff_duration_seconds_bucket{le} handoff_duration_seconds_sum{} handoff_duration_seconds_count{}',
  'active_backends gauge active_backends{}',
  'spawn_attempts counter spawn_attempts_total{service,outcome}',
  'connections_open gauge connections_open{}',
  'endpoint_cache_sessions counter endpoint_cache_sessions_total{service}',
  'fd_usage_ratio gauge fd_usage_ratio{}',
  'uptime_seconds gauge uptime_seconds{}',
];

interface Family {
  name: string;
  type: string;
  samples: { name: string; labels: Readonly<Record<string, string>> }[];
}

/** The golden form of parsed families: sample names and label names in first-seen order. */
export function describeFamilies(families: Iterable<Family>, withSamples = true): string[] {
  const out: string[] = [];
  for (const f of families) {
    const shapes = new Map<string, string>();
    for (const s of f.samples)
      if (!shapes.has(s.name)) shapes.set(s.name, `${s.name}{${Object.keys(s.labels).join(',')}}`);
    out.push(withSamples ? [f.name, f.type, ...shapes.values()].join(' ') : `${f.name} ${f.type}`);
  }
  return out;
}
