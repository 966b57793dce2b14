// `metrics --json`: the broker's OpenMetrics text (what METRICS answers and
// Prometheus scrapes) as JSON families — name, type, help and samples with
// their labels and value — for scripts that would rather not parse the
// exposition format. Parsing is openmetrics-parse.ts's; this owns the JSON.
import { parseOpenMetrics } from '../openmetrics-parse.js';

export interface MetricSampleJson {
  name: string;
  labels: Record<string, string>;
  /** A number, or "+Inf", "-Inf", "NaN", which JSON cannot carry as numbers. */
  value: number | string;
}

export interface MetricFamilyJson {
  name: string;
  type: string;
  help: string;
  samples: MetricSampleJson[];
}

/** The families of an OpenMetrics text; throws OpenMetricsParseError on a malformed one. */
export function metricsJson(text: string): MetricFamilyJson[] {
  return [...parseOpenMetrics(text).families.values()].map((f) => ({
    name: f.name,
    type: f.type,
    help: f.help,
    samples: f.samples.map((s) => ({
      name: s.name,
      labels: { ...s.labels },
      value: Number.isFinite(s.value) ? s.value : jsonless(s.value),
    })),
  }));
}

function jsonless(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? '+Inf' : '-Inf';
}
