// How handoff-broker talks to a terminal: PASS/WARN/FAIL lines, and
// one-line explanations for the errors a user is expected to meet (no stack
// traces for those). CliIo, columns and withNewline are @handoff/backend-sdk/cli's.
import {
  type CliIo,
  columns,
  EXIT_FAILED,
  jsonFailure,
  withNewline,
} from '@handoff/backend-sdk/cli';
import type { AdminRequest } from '@handoff/protocol';
import { AdminClientError, adminRequest } from '../client/admin-client.js';

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

/**
 * An admin reply's JSON body as the CLI contract wants it: `schema_version`,
 * then `ok` (from the exit code unless the body says), then on failure
 * `code` and `message` — lifted from the body's `error` object, else from
 * `failure` — then the rest. A body that is not JSON is returned unchanged.
 */
export function contractDocument(
  body: string,
  exitCode: number,
  failure: (doc: Record<string, unknown>) => { code: string; message: string } = () => ({
    code: 'FAILED',
    message: 'the broker reported a failure',
  }),
): string {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return withNewline(body);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return withNewline(body);
  const { schema_version, ok, code, message, ...rest } = doc;
  const isOk = typeof ok === 'boolean' ? ok : exitCode === 0;
  const error = (rest.error ?? {}) as { code?: unknown; message?: unknown };
  const fallback = isOk ? null : failure(doc);
  const codeOut = code ?? error.code ?? fallback?.code;
  const messageOut = message ?? error.message ?? fallback?.message;
  return `${JSON.stringify({
    schema_version: schema_version ?? 1,
    ok: isOk,
    ...(codeOut === undefined ? {} : { code: codeOut }),
    ...(messageOut === undefined ? {} : { message: messageOut }),
    ...rest,
  })}\n`;
}

/** A broker that cannot be asked: one line on stderr, and under --json one document on stdout. */
export function reportAdminError(io: CliIo, json: boolean, error: AdminClientError): number {
  return reportUnreachable(io, json, error.code, describeAdminError(error), error.socketPath);
}

/** reportAdminError for a failure already described (top's samples, which also parse METRICS). */
export function reportUnreachable(
  io: CliIo,
  json: boolean,
  code: string,
  message: string,
  socketPath: string,
): number {
  if (json) io.stdout(jsonFailure(code, message, { socket_path: socketPath }));
  io.stderr(`handoff-broker: ${message}\n`);
  return EXIT_FAILED;
}

/**
 * Sends one admin request that does work (UPGRADE, RESTART) and relays the
 * broker's answer with its exit code: on stdout when it succeeded or JSON
 * was asked for, else on stderr. A broker that cannot be asked is one line
 * on stderr, or under JSON one document (`ok: false`, `code`, `message`).
 */
export async function relayAdminRequest(
  socketPath: string,
  request: Partial<AdminRequest>,
  timeoutMs: number,
  io: CliIo,
): Promise<number> {
  const json = request.json === true;
  try {
    const reply = await adminRequest(socketPath, request, { timeoutMs });
    if (json) io.stdout(contractDocument(reply.body, reply.exitCode));
    else if (reply.exitCode === 0) io.stdout(withNewline(reply.body));
    else io.stderr(withNewline(reply.body));
    return reply.exitCode;
  } catch (error) {
    if (!isAdminClientError(error)) throw error;
    return reportAdminError(io, json, error);
  }
}
