// Reading OpenMetrics 1.0 text back into families and samples, for `top` and
// for tests: a strict, hostile-safe parser (bounded input, linear time, no
// regular expressions on untrusted text, null-prototype label maps). It owns
// parsing only; what the numbers mean is src/top/model.ts's.
import { BrokerError } from './errors.js';

export type OpenMetricsParseErrorCode = 'TOO_LARGE' | 'SYNTAX';

export class OpenMetricsParseError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:OpenMetricsParseError';
  override readonly name = 'OpenMetricsParseError';
  declare readonly code: OpenMetricsParseErrorCode;
  /** 1-based line of the text where parsing stopped (0: the text as a whole). */
  readonly line: number;
  constructor(code: OpenMetricsParseErrorCode, line: number, message: string) {
    super(code, line > 0 ? `line ${line}: ${message}` : message);
    this.line = line;
  }
}

export interface MetricSample {
  /** The sample's own name (`hello_total`, `x_bucket`), not its family's. */
  readonly name: string;
  /** Label values by name; a null-prototype object, so any name is just data. */
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  /** The `# TYPE`, or `unknown` for samples without one. */
  readonly type: string;
  readonly help: string;
  readonly samples: MetricSample[];
}

export interface ParsedMetrics {
  /** In exposition order. */
  readonly families: ReadonlyMap<string, MetricFamily>;
}

export interface OpenMetricsLimits {
  /** Longest text accepted, in UTF-16 code units (default 16 Mi). */
  maxChars?: number;
  /** Most samples accepted (default 1,000,000). */
  maxSamples?: number;
  /** Most labels on one sample (default 64). */
  maxLabels?: number;
}

const TYPES = new Set([
  'counter',
  'gauge',
  'histogram',
  'gaugehistogram',
  'summary',
  'info',
  'stateset',
  'unknown',
]);

/** Suffixes a sample may add to its family's name (OpenMetrics 1.0 §4.1). */
const SUFFIXES = ['_total', '_created', '_bucket', '_sum', '_count', '_gsum', '_gcount', '_info'];

/** Parses a whole exposition, `# EOF` included; throws OpenMetricsParseError on anything else. */
export function parseOpenMetrics(text: string, limits: OpenMetricsLimits = {}): ParsedMetrics {
  const maxChars = limits.maxChars ?? 16 * 1024 * 1024;
  const maxSamples = limits.maxSamples ?? 1_000_000;
  const maxLabels = limits.maxLabels ?? 64;
  if (typeof text !== 'string') throw new OpenMetricsParseError('SYNTAX', 0, 'not text');
  if (text.length > maxChars)
    throw new OpenMetricsParseError('TOO_LARGE', 0, `${text.length} chars exceed ${maxChars}`);
  if (!text.endsWith('# EOF\n') && !text.endsWith('# EOF'))
    throw new OpenMetricsParseError('SYNTAX', 0, 'no "# EOF" at the end (truncated?)');
  const families = new Map<string, MutableFamily>();
  let samples = 0;
  let lineNo = 0;
  let start = 0;
  let sawEof = false;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end === -1 ? text.length : end);
    start = end === -1 ? text.length : end + 1;
    lineNo++;
    if (sawEof) throw new OpenMetricsParseError('SYNTAX', lineNo, 'text after "# EOF"');
    if (line === '# EOF') {
      sawEof = true;
      continue;
    }
    if (line.startsWith('#')) {
      metadata(line, lineNo, families);
      continue;
    }
    if (++samples > maxSamples)
      throw new OpenMetricsParseError('TOO_LARGE', lineNo, `more than ${maxSamples} samples`);
    const sample = sampleLine(line, lineNo, maxLabels);
    familyOf(sample.name, families).samples.push(sample);
  }
  if (!sawEof) throw new OpenMetricsParseError('SYNTAX', lineNo, 'no "# EOF" line');
  return { families };
}

interface MutableFamily {
  name: string;
  type: string;
  help: string;
  samples: MetricSample[];
}

function metadata(line: string, lineNo: number, families: Map<string, MutableFamily>): void {
  const fail = (why: string): never => {
    throw new OpenMetricsParseError('SYNTAX', lineNo, why);
  };
  const kind = line.startsWith('# TYPE ') ? 'TYPE' : line.startsWith('# HELP ') ? 'HELP' : null;
  if (kind === null) {
    if (line.startsWith('# UNIT ')) return;
    fail('a comment must be # TYPE, # HELP, # UNIT or # EOF');
  }
  const rest = line.slice(7);
  const space = rest.indexOf(' ');
  const name = space === -1 ? rest : rest.slice(0, space);
  if (!isMetricName(name)) fail(`bad metric name ${JSON.stringify(name.slice(0, 80))}`);
  let family = families.get(name);
  if (family === undefined) {
    family = { name, type: 'unknown', help: '', samples: [] };
    families.set(name, family);
  } else if (family.samples.length > 0) {
    fail(`metadata for ${name} after its samples`);
  }
  if (kind === 'TYPE') {
    const type = space === -1 ? '' : rest.slice(space + 1);
    if (!TYPES.has(type)) fail(`unknown type ${JSON.stringify(type.slice(0, 40))}`);
    family.type = type;
  } else {
    family.help = space === -1 ? '' : unescapeText(rest.slice(space + 1), lineNo);
  }
}

/** The declared family a sample belongs to, else a new `unknown` family of its own name. */
function familyOf(sampleName: string, families: Map<string, MutableFamily>): MutableFamily {
  const exact = families.get(sampleName);
  if (exact && exact.type !== 'counter' && exact.type !== 'histogram') return exact;
  for (const suffix of SUFFIXES) {
    if (!sampleName.endsWith(suffix)) continue;
    const family = families.get(sampleName.slice(0, -suffix.length));
    if (family) return family;
  }
  if (exact) return exact;
  const created = { name: sampleName, type: 'unknown', help: '', samples: [] };
  families.set(sampleName, created);
  return created;
}

function sampleLine(line: string, lineNo: number, maxLabels: number): MetricSample {
  const fail = (why: string): never => {
    throw new OpenMetricsParseError('SYNTAX', lineNo, why);
  };
  let i = 0;
  while (i < line.length && isNameChar(line.charCodeAt(i), true)) i++;
  const name = line.slice(0, i);
  if (!isMetricName(name)) fail('a sample must start with a metric name');
  const labels: Record<string, string> = Object.create(null);
  if (line[i] === '{') {
    i++;
    let count = 0;
    while (line[i] !== '}') {
      if (count > 0) {
        if (line[i] !== ',') fail('labels must be separated by ","');
        i++;
      }
      if (++count > maxLabels) fail(`more than ${maxLabels} labels`);
      const nameStart = i;
      while (i < line.length && isNameChar(line.charCodeAt(i), false)) i++;
      const label = line.slice(nameStart, i);
      if (label === '' || isDigit(label.charCodeAt(0))) fail('bad label name');
      if (label in labels) fail(`label ${label} given twice`);
      if (line[i] !== '=' || line[i + 1] !== '"') fail(`label ${label} needs ="value"`);
      i += 2;
      const valueStart = i;
      while (i < line.length && line[i] !== '"') i += line[i] === '\\' ? 2 : 1;
      if (i >= line.length) fail(`unterminated value of label ${label}`);
      labels[label] = unescapeText(line.slice(valueStart, i), lineNo);
      i++;
    }
    i++;
  }
  if (line[i] !== ' ') fail('expected a space before the value');
  const afterValue = line.indexOf(' ', i + 1);
  const valueText = line.slice(i + 1, afterValue === -1 ? line.length : afterValue);
  const value = parseNumber(valueText);
  if (value === undefined) fail(`bad value ${JSON.stringify(valueText.slice(0, 40))}`);
  if (afterValue !== -1) {
    // A timestamp, then perhaps an exemplar: accepted, not kept.
    const tail = line.slice(afterValue + 1);
    const hash = tail.indexOf(' # ');
    const timestamp = hash === -1 ? tail : tail.slice(0, hash);
    if (!tail.startsWith('# ') && parseNumber(timestamp) === undefined)
      fail(`bad timestamp ${JSON.stringify(timestamp.slice(0, 40))}`);
  }
  return { name, labels, value: value as number };
}

/** Undoes \\, \" and \n (label values and HELP text use the same three). */
function unescapeText(text: string, lineNo: number): string {
  if (!text.includes('\\')) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = text[++i];
    if (e === 'n') out += '\n';
    else if (e === '\\') out += '\\';
    else if (e === '"') out += '"';
    else throw new OpenMetricsParseError('SYNTAX', lineNo, `bad escape \\${e ?? ''}`);
  }
  return out;
}

/** A float as OpenMetrics spells it, or undefined. Number('') and Number('0x1') are not. */
function parseNumber(text: string): number | undefined {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (text === '' || text.length > 64) return undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // digits, + - . e E
    if (!(isDigit(c) || c === 43 || c === 45 || c === 46 || c === 101 || c === 69))
      return undefined;
  }
  const value = Number(text);
  return Number.isNaN(value) ? undefined : value;
}

function isMetricName(name: string): boolean {
  if (name === '' || isDigit(name.charCodeAt(0))) return false;
  for (let i = 0; i < name.length; i++) if (!isNameChar(name.charCodeAt(i), true)) return false;
  return true;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** [a-zA-Z0-9_], and ':' in metric names. */
function isNameChar(c: number, colon: boolean): boolean {
  return (
    isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || (colon && c === 58)
  );
}
