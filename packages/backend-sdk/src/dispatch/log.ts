// How the dispatcher and its workers report what they cannot throw: one
// callback taking a level, a one-line message and structured fields. The
// default writes warnings and errors to stderr, so a dropped or closed
// connection is never silent; pass your own (pino's `logger[level](fields,
// msg)` fits in one line) to route them elsewhere.

export type DispatchLogLevel = 'info' | 'warn' | 'error';

export type DispatchLogger = (
  level: DispatchLogLevel,
  message: string,
  fields?: Readonly<Record<string, unknown>>,
) => void;

export const stderrDispatchLogger: DispatchLogger = (level, message) => {
  if (level === 'info') return;
  process.stderr.write(`[handoff dispatcher] ${level}: ${message}\n`);
};

/** The errno-style name of an error (FdPassError and Node SystemError both use `code`). */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}
