// The broker's admin verbs (payload protocol 0xAD01, DESIGN §2.2) as a pure
// dispatcher: an AdminRequest and a provider of broker facts in, an
// AdminReply out. It owns the verbs' exit codes and their JSON and text
// renderings; the server owns the facts (AdminProvider) and the socket.
import { AdminReply, AdminReplyKind, type AdminRequest, AdminVerb } from '@handoff/protocol';
import { diagnoseAnswer, dumpAnswer } from './admin-diagnostics.js';
import type {
  AdminProvider,
  BackendHealthReport,
  BrokerStatus,
  HealthReport,
  InstanceInfo,
  ReadinessReport,
  UpgradeReport,
} from './admin-provider.js';
import { CACHE_SESSION_VERB, cacheSessionReply } from './cache-sessions.js';
import { reloadStatusJson, reloadStatusRows } from './config/reload-state.js';
import { BrokerError } from './errors.js';
import { restartVerb } from './lifecycle/restart-verb.js';
import { logsStatusJson, logsStatusRows } from './logs/status.js';
import { OPENMETRICS_CONTENT_TYPE } from './metrics.js';
import { presenceReplyFields, serviceStatesJson, serviceStatesRows } from './service-presence.js';

/** Bumped only when a JSON body changes incompatibly; always the first key. */
export const ADMIN_JSON_SCHEMA_VERSION = 1;
export const ADMIN_JSON_CONTENT_TYPE = 'application/json';
export const ADMIN_TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';

/** Exit codes carried in AdminReply.exitCode, as the CLI exits with them. */
export const EXIT_OK = 0;
/** The request was served and a check failed (unhealthy, not ready). */
export const EXIT_CHECK_FAILED = 1;
/** The request cannot be served as asked (unknown or unsupported verb, bad argument). */
export const EXIT_USAGE = 2;

/** SHUTDOWN with drain_deadline_ms = 0 drains for this long. */
export const DEFAULT_DRAIN_DEADLINE_MS = 5000;
/** A longer drain is refused: it would look like a hung broker. */
export const MAX_DRAIN_DEADLINE_MS = 10 * 60 * 1000;

export type AdminErrorCode = 'SERVICE_UNKNOWN' | 'USAGE';

/** Thrown by a provider (or the dispatcher) for a request that cannot be served as asked. */
export class AdminError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:AdminError';
  override readonly name = 'AdminError';
  declare readonly code: AdminErrorCode;
  constructor(code: AdminErrorCode, message: string) {
    super(code, message);
  }
}

/** DUMP and DIAGNOSE are served only by a provider with `diagnostics`. */
const NOT_SUPPORTED_YET = new Set<number>([AdminVerb.DUMP, AdminVerb.DIAGNOSE]);

const KNOWN_VERBS = Object.values(AdminVerb).filter(
  (v): v is string => typeof v === 'string' && v !== 'UNSPECIFIED',
);

/** Answers one admin request. Never throws: every failure is a reply with an exit code. */
export async function handleAdminRequest(
  request: AdminRequest,
  provider: AdminProvider,
): Promise<AdminReply> {
  const json = request.json;
  try {
    switch (request.verb) {
      case AdminVerb.STATUS:
        return statusReply(provider.status(), json);
      case AdminVerb.LIST_INSTANCES:
        return instancesReply(
          provider.instances(),
          request.serviceName,
          json,
          provider.definedServices?.(),
        );
      case AdminVerb.HEALTHZ:
        return healthReply(provider.health(), json);
      case AdminVerb.READYZ:
        return readyReply(provider.ready(), json);
      case AdminVerb.BACKEND_HEALTH:
        return backendHealthReply(
          await provider.backendHealth(request.serviceName || undefined),
          json,
        );
      case AdminVerb.CONFIG:
        return configReply(provider.config(), json);
      case AdminVerb.METRICS:
        // The scrape format is the data format: `json` does not apply.
        return AdminReply.create({
          kind: AdminReplyKind.OPENMETRICS,
          body: provider.metricsText(),
          exitCode: EXIT_OK,
          contentType: OPENMETRICS_CONTENT_TYPE,
        });
      case AdminVerb.SHUTDOWN:
        return await shutdownReply(request.drainDeadlineMs, provider, json);
      case AdminVerb.RESTART: {
        const r = await restartVerb(request, provider.restart);
        return json ? jsonReply(r.exitCode, r.body) : textReply(r.exitCode, r.text);
      }
      case AdminVerb.DUMP:
      case AdminVerb.DIAGNOSE: {
        if (!provider.diagnostics) return unservedReply(request.verb, json);
        const r =
          request.verb === AdminVerb.DUMP
            ? dumpAnswer(provider.diagnostics.dump())
            : await diagnoseAnswer(provider.diagnostics, request.serviceName);
        return json ? jsonReply(r.exitCode, r.body) : textReply(r.exitCode, r.text);
      }
      case AdminVerb.UPGRADE:
        return await upgradeReply(request.readyDeadlineMs, provider, json);
      case CACHE_SESSION_VERB:
        if (!provider.cacheSession) return unservedReply(request.verb, json);
        return cacheSessionReply(request.serviceName, provider.cacheSession);
      default:
        return unservedReply(request.verb, json);
    }
  } catch (error) {
    if (error instanceof AdminError) return errorReply(EXIT_USAGE, error.code, error.message, json);
    const message = error instanceof Error ? error.message : String(error);
    return errorReply(
      EXIT_CHECK_FAILED,
      'FAILED',
      `${verbName(request.verb)} failed: ${message}`,
      json,
    );
  }
}

export function verbName(verb: number): string {
  return AdminVerb[verb] ?? `verb ${verb}`;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function statusReply(s: BrokerStatus, json: boolean): AdminReply {
  if (json) {
    return jsonReply(EXIT_OK, {
      pid: s.pid,
      version: s.version,
      socket_path: s.socketPath,
      uptime_seconds: s.uptimeSeconds,
      services: s.services,
      active_backends: s.activeBackends,
      connections_open: s.connectionsOpen,
      draining: s.draining,
      ...(s.fdStore === undefined
        ? {}
        : {
            fd_store: s.fdStore.map((f) => ({
              service: f.key,
              stored: f.stored,
              expired: f.expired,
              refused: f.refused,
            })),
          }),
      ...logsStatusJson(s.logs),
      ...serviceStatesJson(s.serviceStates),
      ...reloadStatusJson(s.configReload),
      memory: {
        rss_bytes: s.memory.rss,
        heap_used_bytes: s.memory.heapUsed,
        heap_total_bytes: s.memory.heapTotal,
        external_bytes: s.memory.external,
      },
    });
  }
  return textReply(
    EXIT_OK,
    keyValues([
      ['broker', `pid ${s.pid}, version ${s.version}`],
      ['socket', s.socketPath],
      ['uptime', formatDuration(s.uptimeSeconds)],
      ['services', String(s.services)],
      ['backends', `${s.activeBackends} active`],
      ['connections', `${s.connectionsOpen} open`],
      ['state', s.draining ? 'draining' : 'serving'],
      ...(s.fdStore === undefined
        ? []
        : [['fd store', fdStoreLine(s.fdStore)] as [string, string]]),
      ...logsStatusRows(s.logs),
      ...serviceStatesRows(s.serviceStates),
      ...reloadStatusRows(s.configReload),
      [
        'memory',
        `rss ${s.memory.rss === null ? 'unknown' : mib(s.memory.rss)}, heap ${mib(s.memory.heapUsed)} used of ${mib(s.memory.heapTotal)}`,
      ],
    ]),
  );
}

function fdStoreLine(counts: NonNullable<BrokerStatus['fdStore']>): string {
  if (counts.length === 0) return 'empty';
  return counts
    .map((c) => `${c.key} ${c.stored} stored, ${c.expired} expired, ${c.refused} refused`)
    .join('; ');
}

function instancesReply(
  all: InstanceInfo[],
  serviceName: string,
  json: boolean,
  defined?: readonly string[],
): AdminReply {
  const instances = serviceName ? all.filter((i) => i.service === serviceName) : all;
  // Unknown ≠ defined but not running (service-presence.ts); a provider that cannot tell says neither.
  const presence =
    serviceName && instances.length === 0 && defined
      ? presenceReplyFields(serviceName, defined)
      : null;
  if (presence) {
    const exit = presence.ok ? EXIT_OK : EXIT_CHECK_FAILED;
    return json
      ? jsonReply(exit, { ...presence, instances: [] })
      : textReply(exit, `${presence.message}\n`);
  }
  if (json) {
    return jsonReply(EXIT_OK, {
      instances: instances.map((i) => ({
        service: i.service,
        version: i.version,
        endpoint: i.endpoint,
        pid: i.pid,
        state: i.state,
        started_at_unix_ms: i.startedAtUnixMs,
        connections_routed: i.connectionsRouted,
      })),
    });
  }
  if (instances.length === 0) {
    return textReply(
      EXIT_OK,
      serviceName ? `no running instance of ${serviceName}\n` : 'no running instances\n',
    );
  }
  return textReply(
    EXIT_OK,
    table([
      ['SERVICE', 'VERSION', 'PID', 'STATE', 'ROUTED', 'STARTED', 'ENDPOINT'],
      ...instances.map((i) => [
        i.service,
        i.version,
        i.pid === null ? '-' : String(i.pid),
        i.state,
        String(i.connectionsRouted),
        new Date(i.startedAtUnixMs).toISOString(),
        i.endpoint,
      ]),
    ]),
  );
}

function healthReply(h: HealthReport, json: boolean): AdminReply {
  const exit = h.healthy ? EXIT_OK : EXIT_CHECK_FAILED;
  if (json) {
    return jsonReply(exit, {
      healthy: h.healthy,
      checks: h.checks.map((c) => ({ name: c.name, ok: c.ok, detail: c.detail })),
    });
  }
  const lines = table(h.checks.map((c) => [c.ok ? 'PASS' : 'FAIL', c.name, c.detail]));
  return textReply(exit, `${h.healthy ? 'healthy' : 'unhealthy'}\n${lines}`);
}

function readyReply(r: ReadinessReport, json: boolean): AdminReply {
  const exit = r.ready ? EXIT_OK : EXIT_CHECK_FAILED;
  if (json) return jsonReply(exit, { ready: r.ready, reason: r.reason });
  return textReply(exit, r.ready ? 'ready\n' : `not ready: ${r.reason}\n`);
}

function backendHealthReply(report: BackendHealthReport, json: boolean): AdminReply {
  const exit = report.healthy ? EXIT_OK : EXIT_CHECK_FAILED;
  if (json) {
    return jsonReply(exit, {
      healthy: report.healthy,
      backends: report.backends.map((b) => ({
        service: b.service,
        version: b.version,
        endpoint: b.endpoint,
        pid: b.pid,
        healthy: b.healthy,
        detail: b.detail,
        round_trip_ms: b.roundTripMs,
      })),
    });
  }
  if (report.backends.length === 0) return textReply(exit, 'no backends to check\n');
  return textReply(
    exit,
    table([
      ['', 'SERVICE', 'VERSION', 'PID', 'RTT', 'DETAIL'],
      ...report.backends.map((b) => [
        b.healthy ? 'PASS' : 'FAIL',
        b.service,
        b.version,
        b.pid === null ? '-' : String(b.pid),
        b.roundTripMs === null ? '-' : `${b.roundTripMs.toFixed(2)} ms`,
        b.detail,
      ]),
    ]),
  );
}

function configReply(config: Record<string, unknown>, json: boolean): AdminReply {
  if (json) return jsonReply(EXIT_OK, config);
  const rows: string[][] = [];
  flatten(config, '', rows);
  return textReply(EXIT_OK, rows.length === 0 ? '(empty)\n' : table(rows));
}

async function shutdownReply(
  requested: bigint,
  provider: AdminProvider,
  json: boolean,
): Promise<AdminReply> {
  if (requested > BigInt(MAX_DRAIN_DEADLINE_MS)) {
    throw new AdminError(
      'USAGE',
      `drain deadline ${requested} ms is over the ${MAX_DRAIN_DEADLINE_MS} ms maximum`,
    );
  }
  const deadlineMs = requested === 0n ? DEFAULT_DRAIN_DEADLINE_MS : Number(requested);
  await provider.shutdown(deadlineMs);
  if (json) return jsonReply(EXIT_OK, { shutting_down: true, drain_deadline_ms: deadlineMs });
  return textReply(EXIT_OK, `shutting down: draining for up to ${deadlineMs} ms\n`);
}

/** UPGRADE: exit 0 with old pid → new pid, or exit 1 with the reason's code (UpgradeError). */
async function upgradeReply(
  requested: bigint,
  provider: AdminProvider,
  json: boolean,
): Promise<AdminReply> {
  if (!provider.upgrade) return unservedReply(AdminVerb.UPGRADE, json);
  if (requested > BigInt(MAX_DRAIN_DEADLINE_MS))
    throw new AdminError(
      'USAGE',
      `ready deadline ${requested} ms is over the ${MAX_DRAIN_DEADLINE_MS} ms maximum`,
    );
  let r: UpgradeReport;
  try {
    r = await provider.upgrade(Number(requested));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const message = `upgrade failed: ${(error as Error).message}; the broker keeps serving`;
    const failure = typeof code === 'string' ? code : 'FAILED';
    if (json)
      return jsonReply(EXIT_CHECK_FAILED, {
        ok: false,
        code: failure,
        message,
        error: { code: failure, message },
      });
    return textReply(EXIT_CHECK_FAILED, `${message}\n`);
  }
  const message = `upgraded: pid ${r.oldPid} → ${r.newPid}, clients waited ${r.switchMs.toFixed(1)} ms (${Math.round(r.totalMs)} ms in all)`;
  if (json)
    return jsonReply(EXIT_OK, {
      ok: true,
      code: 'UPGRADED',
      message,
      old_pid: r.oldPid,
      new_pid: r.newPid,
      switch_ms: r.switchMs,
      total_ms: r.totalMs,
    });
  return textReply(EXIT_OK, `${message}\n`);
}

function unservedReply(verb: number, json: boolean): AdminReply {
  if (NOT_SUPPORTED_YET.has(verb)) {
    // Exit 2, not 1: nothing was checked, and a script must not read it as
    // "unhealthy"; like an unknown verb, this request cannot be served here.
    return errorReply(
      EXIT_USAGE,
      'NOT_SUPPORTED',
      `${verbName(verb)} is not supported by this broker yet`,
      json,
      { verb: verbName(verb) },
    );
  }
  const what =
    verb === AdminVerb.UNSPECIFIED ? 'no admin verb given' : `unknown admin verb ${verb}`;
  return errorReply(
    EXIT_USAGE,
    'UNKNOWN_VERB',
    `${what}; known verbs: ${KNOWN_VERBS.join(', ')}`,
    json,
    {
      verb,
    },
  );
}

function errorReply(
  exitCode: number,
  code: string,
  message: string,
  json: boolean,
  extra: Record<string, unknown> = {},
): AdminReply {
  if (json) return jsonReply(exitCode, { error: { code, message, ...extra } });
  return textReply(exitCode, `${message}\n`);
}

function jsonReply(exitCode: number, body: Record<string, unknown>): AdminReply {
  return AdminReply.create({
    kind: AdminReplyKind.JSON,
    // Spread after the version so a body can never displace it from first place.
    body: `${JSON.stringify({ schema_version: ADMIN_JSON_SCHEMA_VERSION, ...withoutVersion(body) }, jsonSafe)}\n`,
    exitCode,
    contentType: ADMIN_JSON_CONTENT_TYPE,
  });
}

function withoutVersion(body: Record<string, unknown>): Record<string, unknown> {
  const { schema_version: _ignored, ...rest } = body;
  return rest;
}

/** bigint is not JSON: exact as a number when it fits, else as a decimal string. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value)
    : value.toString();
}

function textReply(exitCode: number, body: string): AdminReply {
  return AdminReply.create({
    kind: AdminReplyKind.TEXT,
    body,
    exitCode,
    contentType: ADMIN_TEXT_CONTENT_TYPE,
  });
}

function keyValues(rows: [string, string][]): string {
  return table(rows.map(([k, v]) => [`${k}:`, v]));
}

/** Left-aligned columns, two spaces apart, no trailing blanks. */
function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

function flatten(value: unknown, prefix: string, rows: string[][]): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0 && prefix) rows.push([prefix, '{}']);
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, rows);
    return;
  }
  rows.push([prefix, JSON.stringify(value, jsonSafe) ?? String(value)]);
}

function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const parts: string[] = [];
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) parts.push(`${d}d`);
  if (d || h) parts.push(`${h}h`);
  if (d || h || m) parts.push(`${m}m`);
  parts.push(`${s % 60}s`);
  return parts.join(' ');
}
