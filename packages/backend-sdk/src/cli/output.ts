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

/** Left-aligned columns two spaces apart; the last column is never padded. */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
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
