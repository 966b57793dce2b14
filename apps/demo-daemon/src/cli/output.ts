// How demo-kv talks to a terminal or a script: the result on stdout (text,
// or one JSON object with --json), the route and problems on stderr, and a
// one-line explanation for each failure a user is expected to meet.
// CliIo and columns are the shared runner's (@handoff/backend-sdk/cli).
import { FrameClientError } from '@handoff/backend-sdk';
import { type CliIo, columns } from '@handoff/backend-sdk/cli';
import { ConnectServiceError } from '@handoff/broker/client';
import { DemoKvError, type DemoKvRoute } from '../client.js';
import type { KvStats } from '../kv-service.js';

export type { CliIo };

export const JSON_SCHEMA_VERSION = 1;

/** One JSON line. 64-bit counters print as JSON numbers (exact below 2^53, which they stay). */
export function jsonLine(fields: Record<string, unknown>): string {
  return `${JSON.stringify({ schema_version: JSON_SCHEMA_VERSION, ...fields }, (_key, value) =>
    typeof value === 'bigint' ? Number(value) : value,
  )}\n`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A value for JSON: `value` when it is UTF-8 text, else `value_base64`. */
export function valueJson(value: Uint8Array): { value: string } | { value_base64: string } {
  try {
    return { value: strictUtf8.decode(value) };
  } catch {
    return { value_base64: Buffer.from(value).toString('base64') };
  }
}

export function routeNote(route: DemoKvRoute): string {
  const how =
    route === 'handoff'
      ? 'handoff (the broker passed this connection to the daemon)'
      : route === 'cache'
        ? 'endpoint cache (straight to the daemon the broker routed to before)'
        : 'reconnect (to the daemon’s own socket)';
  return `demo-kv: connected by ${how}\n`;
}

export function statsText(s: KvStats): string {
  return columns([
    ['entries', `${s.entries} (max ${s.maxEntries})`],
    ['bytes', `${s.bytes} (max ${s.maxBytes})`],
    ['hits', String(s.hits)],
    ['misses', String(s.misses)],
    ['sets', String(s.sets)],
    ['deletes', String(s.deletes)],
    ['expired', String(s.expired)],
    ['evicted', String(s.evicted)],
    ['connections', String(s.connections)],
    ['handoffs', String(s.handoffs)],
    ['waiting', String(s.waiting)],
    ['uptime', `${(Number(s.uptimeMs) / 1000).toFixed(1)} s`],
  ]);
}

export function statsJson(s: KvStats): Record<string, unknown> {
  return {
    entries: s.entries,
    bytes: s.bytes,
    max_entries: s.maxEntries,
    max_bytes: s.maxBytes,
    hits: s.hits,
    misses: s.misses,
    sets: s.sets,
    deletes: s.deletes,
    expired: s.expired,
    evicted: s.evicted,
    connections: s.connections,
    handoffs: s.handoffs,
    uptime_ms: s.uptimeMs,
    waiting: s.waiting,
  };
}

export interface Failure {
  /** Stable, for scripts: a daemon's failure code, or where it went wrong. */
  code: string;
  message: string;
}

/** The failures a user is expected to meet, in one line each; anything else is rethrown. */
export function describeFailure(error: unknown, brokerPath: string): Failure {
  if (error instanceof ConnectServiceError) {
    switch (error.code) {
      case 'CONNECT':
        return {
          code: 'CONNECT',
          message: `cannot reach the broker at ${brokerPath} (${error.message}) — is \`handoff-broker serve\` running?`,
        };
      case 'REFUSED':
        return { code: 'REFUSED', message: error.message };
      default:
        return { code: error.code, message: `connecting through ${brokerPath}: ${error.message}` };
    }
  }
  if (error instanceof FrameClientError) {
    return { code: error.code, message: `the request to the daemon failed: ${error.message}` };
  }
  if (error instanceof DemoKvError) {
    return { code: error.code, message: `the daemon refused: ${error.message}` };
  }
  throw error;
}
