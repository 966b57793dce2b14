// What one line of a daemon log file is (a JSON record per line) and where
// a service's log files live. Shared by the writer (log-file.ts, capture.ts)
// and the reader (reader.ts, `handoff-broker logs`), so both agree.
import { join } from 'node:path';

/** One line of a log file, as JSON: `{"t":…,"pid":…,"stream":…,"line":…}`. */
export interface LogRecord {
  /** When the broker read it (Unix ms). */
  t: number;
  /** The daemon that wrote it (for `broker` records: the broker itself). */
  pid: number;
  /** `broker` marks a note of the broker's own (lines dropped on a full disk). */
  stream: 'stdout' | 'stderr' | 'broker';
  /** The text, without its newline (invalid UTF-8 replaced by U+FFFD). */
  line: string;
  /** Present (true) when the line was longer than the cap: the next record of this pid and stream continues it. */
  split?: true;
  /** Present (true) for a last line that had no newline when its pipe closed. */
  noeol?: true;
  /** On a `broker` record: how many lines were dropped because writes failed. */
  dropped?: number;
}

/** The longest line kept as one record; longer ones are split (and marked). */
export const LINE_CAP_BYTES = 16 * 1024;

/** `<stateDir>/logs`: created 0700 by the first writer. */
export function logsDir(stateDir: string): string {
  return join(stateDir, 'logs');
}

/** The current file of one service@version; rotated ones add `.1`, `.2`, … (`.1` the newest). */
export function logFilePath(stateDir: string, service: string, version: string): string {
  return join(logsDir(stateDir), `${service}-${version}.log`);
}

/** One record as a line of the file (with its newline). */
export function encodeRecord(record: LogRecord): string {
  return `${JSON.stringify(record)}\n`;
}

/** A file line back into a record; null for anything that is not one (a torn write). */
export function decodeRecord(text: string): LogRecord | null {
  try {
    const value = JSON.parse(text) as Partial<LogRecord> | null;
    if (
      value === null ||
      typeof value !== 'object' ||
      typeof value.t !== 'number' ||
      typeof value.pid !== 'number' ||
      typeof value.line !== 'string' ||
      (value.stream !== 'stdout' && value.stream !== 'stderr' && value.stream !== 'broker')
    )
      return null;
    return value as LogRecord;
  } catch {
    return null;
  }
}
