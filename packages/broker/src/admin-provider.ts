// What the admin dispatcher (admin.ts) asks of the broker: the provider of
// its facts and the shapes of those facts (status, instances, health, an
// upgrade's result). Types only; broker-admin.ts implements the provider.
import type { DiagnosticsProvider } from './admin-diagnostics.js';
import type { ConfigReloadStatus } from './config/reload-state.js';
import type { RestartProvider } from './lifecycle/restart-verb.js';
import type { LogsStatus } from './logs/status.js';
import type { ServiceState } from './service-presence.js';

export interface BrokerStatus {
  pid: number;
  /** The broker's package version. */
  version: string;
  socketPath: string;
  uptimeSeconds: number;
  /** Service definitions loaded. */
  services: number;
  activeBackends: number;
  connectionsOpen: number;
  /** True once SHUTDOWN (or a signal) started the drain. */
  draining: boolean;
  /** Fds held in the fd store per service key, and those closed uncollected or refused. */
  fdStore?: { key: string; stored: number; expired: number; refused: number }[];
  /** Daemon logs: the state dir, dropped lines, the last spawn failure per service (src/logs/status.ts). */
  logs?: LogsStatus;
  /** The broker process's memory (process.memoryUsage()), to tell a leak from allocator growth. */
  memory: { rss: number | null; heapUsed: number; heapTotal: number; external: number };
  /** Each service: defined, running, or both (src/service-presence.ts). */
  serviceStates?: ServiceState[];
  /** The configuration's last load or reload; a failed reload kept the last good definitions. */
  configReload?: ConfigReloadStatus;
}

export interface InstanceInfo {
  service: string;
  version: string;
  /** The daemon's socket: what `handoff-broker probe <service>` probes. */
  endpoint: string;
  /** Null while a spawned process has not reported yet. */
  pid: number | null;
  state: 'starting' | 'ready' | 'stopping';
  startedAtUnixMs: number;
  /** Client connections routed to it so far. */
  connectionsRouted: number;
}

export interface HealthCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface HealthReport {
  healthy: boolean;
  checks: HealthCheck[];
}

export interface ReadinessReport {
  ready: boolean;
  /** Why not ready ("draining", "loading service definitions"), or "" when ready. */
  reason: string;
}

export interface BackendHealthEntry {
  service: string;
  version: string;
  endpoint: string;
  pid: number | null;
  healthy: boolean;
  /** The probe's failure (a ProbeError code and message), or "" when healthy. */
  detail: string;
  /** Probe round trip, when the probe answered. */
  roundTripMs: number | null;
}

export interface BackendHealthReport {
  healthy: boolean;
  backends: BackendHealthEntry[];
}

/**
 * What the broker server exposes to the admin verbs. Every method answers
 * from current state; only backendHealth does I/O (it probes daemons).
 * Throw AdminError to answer a usage problem (exit 2); any other throw is
 * reported as a failed request (exit 1) with its message.
 */
export interface AdminProvider {
  status(): BrokerStatus;
  /** Every backend the broker knows, in a stable order. */
  instances(): InstanceInfo[];
  /** The names of the loaded service definitions, so "unknown" differs from "not running". Absent: cannot tell. */
  definedServices?(): string[];
  health(): HealthReport;
  ready(): ReadinessReport;
  /** Probes every backend, or those of one service; AdminError SERVICE_UNKNOWN for a name not configured. */
  backendHealth(serviceName?: string): Promise<BackendHealthReport>;
  /** The effective configuration as plain JSON data (snake_case keys are the provider's choice). */
  config(): Record<string, unknown>;
  /** The metrics registry rendered (OpenMetrics text ending in `# EOF\n`). */
  metricsText(): string;
  /**
   * Starts a graceful shutdown: stop accepting, let in-flight Hellos and
   * handoffs finish for up to `drainDeadlineMs`, then exit. Resolves once
   * the drain has begun — not when it ends — because the connection that
   * carries this reply is one of those being drained; the server must
   * write the reply before it closes admin connections.
   */
  shutdown(drainDeadlineMs: number): Promise<void>;
  /**
   * Hands the broker over to a successor process; resolves once it serves
   * (0 = the default ready deadline). Rejects with an error carrying a
   * `code` (UpgradeError) when it did not happen. Absent: not served.
   */
  upgrade?(readyDeadlineMs: number): Promise<UpgradeReport>;
  /** RESTART: rolling restarts of a service's running daemons (lifecycle/restart-verb.ts). Absent: not served. */
  restart?: RestartProvider;
  /** DUMP and DIAGNOSE (admin-diagnostics.ts). Absent: not served. */
  diagnostics?: DiagnosticsProvider;
  /** CACHE_SESSION_VERB (cache-sessions.ts): counts one endpoint-cache session; false if not counted. Absent: not served. */
  cacheSession?(service: string): boolean;
}

/** A finished upgrade, as UPGRADE answers it. */
export interface UpgradeReport {
  oldPid: number;
  newPid: number;
  /** How long new clients waited in the backlog (pause to commit). */
  switchMs: number;
  /** From the request to the commit, the successor's start-up included. */
  totalMs: number;
}
