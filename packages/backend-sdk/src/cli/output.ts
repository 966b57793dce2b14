// How a handoff command line reaches its terminal: the I/O a command gets
// (so tests can capture it) and the formatting every program shares. What a
// program says, and how it explains its own failures, stays with the program.

/** A command's output and environment: real process I/O in a bin, strings in a test. */
export interface CliIo {
  /** Results: text, JSON, or raw bytes. */
  stdout(data: string | Uint8Array): void;
  /** Usage, problems, notes. */
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

/**
 * Left-aligned columns two spaces apart; a row's last cell is never padded,
 * nor does it widen its column (so a short row's long text does not push
 * the others' columns apart).
 */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i < row.length - 1) widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** Ensures a body printed as-is ends its last line. */
export function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

/** Bumped only when a JSON document changes incompatibly; always its first key. */
export const CLI_JSON_SCHEMA_VERSION = 1;

/**
 * Whether the command line asks for JSON: `--json` before any `--`, looked
 * for in the raw argv so that a line that does not parse still gets its
 * failure as JSON.
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * A failure as the one JSON document a --json command line prints on
 * stdout: `{schema_version, ok: false, code, message, …extra}`, with
 * `error: {code, message}` repeated for readers of the older shape.
 */
export function jsonFailure(
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): string {
  const doc = {
    schema_version: CLI_JSON_SCHEMA_VERSION,
    ok: false,
    code,
    message,
    ...extra,
    error: { code, message },
  };
  return `${JSON.stringify(doc)}\n`;
}
