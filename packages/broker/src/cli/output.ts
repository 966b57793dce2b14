// How handoff-broker talks to a terminal: PASS/WARN/FAIL lines, and
// one-line explanations for the errors a user is expected to meet (no stack
// traces for those). CliIo, columns and withNewline are @handoff/backend-sdk/cli's.
import { type CliIo, columns, withNewline } from '@handoff/backend-sdk/cli';
import { AdminClientError } from '../client/admin-client.js';

export { type CliIo, columns, withNewline };

export type Verdict = 'PASS' | 'WARN' | 'FAIL' | 'SKIP';

export interface CheckLine {
  name: string;
  verdict: Verdict;
  detail: string;
}

export function checkLines(checks: readonly CheckLine[]): string {
  return columns(checks.map((c) => [c.verdict, c.name, c.detail]));
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
