// Where and how the broker's own log goes: always stderr (stdout is for
// results), as JSON lines for machines or, on a terminal, as short human
// lines ("12:00:01.234 INFO  backend ready service=demo-kv daemon_pid=42").
// `serve --log-format` and $HANDOFF_LOG_FORMAT choose; `auto` asks isatty.
import pino, { type DestinationStream, type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty' | 'auto';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty', 'auto'];

export interface BrokerLoggerOptions {
  /** Default: $HANDOFF_LOG_FORMAT, else `auto` (pretty on a TTY, JSON otherwise). */
  format?: LogFormat;
  /** Default: $HANDOFF_LOG_LEVEL, else `info`. */
  level?: string;
  /** Default: stderr (fd 2). Tests pass their own. */
  stream?: { write(line: string): unknown; isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
}

/** A log format named on a command line or in the environment; undefined if not one. */
export function parseLogFormat(value: string | undefined): LogFormat | undefined {
  return LOG_FORMATS.find((f) => f === value);
}

/** `auto` → pretty when the stream is a terminal, else JSON. */
export function resolveLogFormat(format: LogFormat, isTTY: boolean): 'json' | 'pretty' {
  if (format === 'auto') return isTTY ? 'pretty' : 'json';
  return format;
}

/** The broker's logger: `startBroker` uses it unless given `logger`. */
export function createBrokerLogger(options: BrokerLoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const format = options.format ?? parseLogFormat(env.HANDOFF_LOG_FORMAT) ?? 'auto';
  const level = options.level ?? env.HANDOFF_LOG_LEVEL ?? 'info';
  const isTTY = options.stream ? options.stream.isTTY === true : process.stderr.isTTY === true;
  // Synchronous on fd 2: lines keep their order with the CLI's own stderr writes
  // and are out before a process.exit.
  const out: DestinationStream = options.stream ?? pino.destination({ dest: 2, sync: true });
  const chosen = resolveLogFormat(format, isTTY);
  return pino({ name: 'handoff-broker', level }, chosen === 'json' ? out : prettyStream(out));
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** pino's own keys, which the pretty line shows in its fixed places or not at all. */
const OWN_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

/** A stream pino writes JSON lines into, which writes them on as pretty lines. */
export function prettyStream(out: { write(line: string): unknown }): DestinationStream {
  return {
    write(line: string) {
      out.write(prettyLine(line));
    },
  };
}

/** One pino JSON line as `HH:MM:SS.mmm LEVEL msg key=value …`; a line that is not JSON, as it came. */
export function prettyLine(jsonLine: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  const time = typeof record.time === 'number' ? new Date(record.time) : new Date();
  const clock = time.toISOString().slice(11, 23);
  const level = LEVELS[record.level as number] ?? String(record.level);
  const fields = Object.entries(record)
    .filter(([key, value]) => !OWN_KEYS.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  const msg = typeof record.msg === 'string' ? record.msg : '';
  return `${[clock, level.padEnd(5), msg, ...fields].filter((s) => s !== '').join(' ')}\n`;
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value !== null && typeof value === 'object' && 'message' in value) {
    // pino's serialised error: its type and message (the stack stays in JSON output).
    const e = value as { type?: unknown; message?: unknown };
    return JSON.stringify(`${typeof e.type === 'string' ? `${e.type}: ` : ''}${String(e.message)}`);
  }
  return JSON.stringify(value) ?? String(value);
}
