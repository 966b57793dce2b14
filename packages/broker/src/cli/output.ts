// How the CLI talks to a terminal: aligned columns, PASS/WARN/FAIL lines,
// and one-line explanations for the errors a user is expected to meet
// (no stack traces for those). Commands decide what to say; this, how.
import { AdminClientError } from '../client/admin-client.js';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

export type Verdict = 'PASS' | 'WARN' | 'FAIL' | 'SKIP';

export interface CheckLine {
  name: string;
  verdict: Verdict;
  detail: string;
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

export function checkLines(checks: readonly CheckLine[]): string {
  return columns(checks.map((c) => [c.verdict, c.name, c.detail]));
}

/** Ensures a body printed as-is ends its last line. */
export function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

/** The one line a user sees when the broker cannot be asked. */
export function describeAdminError(error: AdminClientError): string {
  const at = `the broker at ${error.socketPath}`;
  switch (error.code) {
    case 'CONNECT':
      return `cannot reach ${at} (${error.errno ?? 'connect failed'}) — is \`handoff-broker serve\` running?`;
    case 'TIMEOUT':
      return `${at} did not answer in time: ${error.message}`;
    case 'CLOSED':
      return `${at} closed the connection without answering — is it shutting down?`;
    case 'PROTOCOL':
      return `${at} answered something that is not an admin reply: ${error.message}`;
  }
}

export function isAdminClientError(error: unknown): error is AdminClientError {
  return error instanceof AdminClientError;
}
