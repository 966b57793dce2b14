// The broker's answers to admin verbs: an AdminProvider over the live
// state of a running broker (its backends, definitions, metrics), so the
// admin dispatcher (admin.ts) stays a pure function of that state.

import { getHeapStatistics } from 'node:v8';
import { probeDaemon } from '@handoff/backend-sdk';
import { AdminError } from './admin.js';
import type {
  AdminProvider,
  BackendHealthEntry,
  BrokerStatus,
  UpgradeReport,
} from './admin-provider.js';
import type { Backend, BackendRegistry } from './backend-registry.js';
import { cacheSessionCounter } from './cache-sessions.js';
import type { ServiceDefinition } from './config/definition.js';
import { type ConfigReloadStatus, reloadStatusJson } from './config/reload-state.js';
import { type DiagnosticsState, diagnosticsProvider } from './diagnostics-facts.js';
import { restartServices } from './lifecycle/restart-services.js';
import { trackSpawnFailures } from './logs/failure-tail.js';
import { logFileStats } from './logs/log-file.js';
import { logsDir } from './logs/record.js';
import type { MetricsRegistry } from './metrics.js';
import { brokerPackageVersion } from './package-version.js';
import { serviceStates } from './service-presence.js';

export interface BrokerState {
  socketPath: string;
  controlPath: string;
  startedAt: number;
  registry: BackendRegistry;
  metrics: MetricsRegistry;
  definitions(): readonly ServiceDefinition[];
  configErrors(): readonly { file: string; field?: string | undefined; message: string }[];
  /** The last reload's outcome: a failed one kept the last good definitions (config/reload-state.ts). */
  configReload?(): ConfigReloadStatus;
  connectionsOpen(): number;
  /** Stored fd counts per service key (src/fd-store.ts). */
  fdStore?(): NonNullable<BrokerStatus['fdStore']>;
  draining(): boolean;
  shutdown(drainDeadlineMs: number): void;
  /** Where daemon logs are written (BrokerOptions.stateDir), or null. */
  stateDir?: string | null;
  /** Broker.upgrade (src/upgrade/); 0 = the default ready deadline. */
  upgrade?(readyDeadlineMs: number): Promise<UpgradeReport>;
  /** What DUMP and DIAGNOSE need beyond the above (diagnostics-facts.ts). Absent: not served. */
  diagnostics?: Pick<DiagnosticsState, 'options' | 'budget' | 'journal' | 'channels'>;
  /** Counts one endpoint-cache session (cache-sessions.ts). Absent: CACHE_SESSION_VERB not served. */
  countCacheSession?(service: string): void;
}

export function brokerAdminProvider(state: BrokerState): AdminProvider {
  const spawnFailures = trackSpawnFailures(state.registry);
  const instance = (b: Backend) => ({
    service: b.definition.name,
    version: b.definition.version,
    endpoint: b.endpoint,
    pid: b.pid,
    state: b.state,
    startedAtUnixMs: b.startedAt,
    connectionsRouted: b.routed,
  });
  return {
    status: () => ({
      pid: process.pid,
      version: brokerPackageVersion() ?? 'unknown',
      socketPath: state.socketPath,
      uptimeSeconds: (Date.now() - state.startedAt) / 1000,
      services: state.definitions().length,
      activeBackends: state.registry.list().length,
      connectionsOpen: state.connectionsOpen(),
      ...(state.fdStore ? { fdStore: state.fdStore() } : {}),
      draining: state.draining(),
      logs: {
        stateDir: state.stateDir ?? null,
        files: state.stateDir ? logFileStats(logsDir(state.stateDir)) : [],
        spawnFailures: spawnFailures(),
      },
      memory: brokerMemory(),
      serviceStates: serviceStates(
        state.definitions().map((d) => d.name),
        state.registry.list().map((b) => b.definition.name),
      ),
      ...(state.configReload ? { configReload: state.configReload() } : {}),
    }),
    definedServices: () => [...new Set(state.definitions().map((d) => d.name))],
    instances: () =>
      state.registry
        .list()
        .map(instance)
        .sort((a, b) =>
          a.service === b.service
            ? a.version.localeCompare(b.version)
            : a.service.localeCompare(b.service),
        ),
    health: () => {
      const errors = state.configErrors();
      const checks = [
        {
          name: 'listening',
          ok: !state.draining(),
          detail: state.draining() ? 'draining' : state.socketPath,
        },
        {
          name: 'service definitions',
          ok: errors.length === 0,
          detail:
            errors.length === 0
              ? `${state.definitions().length} loaded`
              : `${errors.length} invalid (first: ${errors[0]!.file}: ${errors[0]!.message})`,
        },
      ];
      return { healthy: checks.every((c) => c.ok), checks };
    },
    ready: () =>
      state.draining() ? { ready: false, reason: 'draining' } : { ready: true, reason: '' },
    backendHealth: async (serviceName) => {
      if (serviceName && !state.definitions().some((d) => d.name === serviceName)) {
        throw new AdminError(
          'SERVICE_UNKNOWN',
          `no service named ${JSON.stringify(serviceName)} is configured`,
        );
      }
      const backends = state.registry
        .list()
        .filter((b) => !serviceName || b.definition.name === serviceName);
      const entries = await Promise.all(
        backends.map(async (b): Promise<BackendHealthEntry> => {
          try {
            const verified = await probeDaemon(b.endpoint, b.pid ? { pid: b.pid } : {});
            return {
              service: b.definition.name,
              version: b.definition.version,
              endpoint: b.endpoint,
              pid: b.pid,
              healthy: true,
              detail: '',
              roundTripMs: verified.roundTripMs,
            };
          } catch (error) {
            const code = (error as { code?: string }).code ?? 'ERROR';
            return {
              service: b.definition.name,
              version: b.definition.version,
              endpoint: b.endpoint,
              pid: b.pid,
              healthy: false,
              detail: `${code}: ${(error as Error).message}`,
              roundTripMs: null,
            };
          }
        }),
      );
      return { healthy: entries.every((e) => e.healthy), backends: entries };
    },
    config: () => ({
      socket_path: state.socketPath,
      control_path: state.controlPath,
      services: state.definitions().map((d) => ({
        name: d.name,
        version: d.version,
        command: d.command,
        args: d.args,
        cwd: d.cwd ?? null,
        handoff: d.handoff,
        idle_timeout_secs: d.idleTimeoutSecs ?? null,
        source: d.source,
      })),
      errors: state
        .configErrors()
        .map((e) => ({ file: e.file, field: e.field ?? null, message: e.message })),
      ...reloadStatusJson(state.configReload?.()),
    }),
    metricsText: () => state.metrics.render(),
    ...(state.countCacheSession
      ? { cacheSession: cacheSessionCounter(state.definitions, state.countCacheSession) }
      : {}),
    restart: restartServices(state.registry, state.definitions),
    ...(state.upgrade ? { upgrade: state.upgrade } : {}),
    ...(state.diagnostics
      ? {
          diagnostics: diagnosticsProvider({
            ...state,
            ...state.diagnostics,
            fdStore: state.fdStore ?? (() => []),
          }),
        }
      : {}),
    shutdown: async (drainDeadlineMs) => {
      // The reply to SHUTDOWN goes out first; the drain starts right after.
      setImmediate(() => state.shutdown(drainDeadlineMs));
    },
  };
}

/**
 * RSS is read from /proc, which takes an fd: out of descriptors (STATUS is
 * still answered on the spare one) it cannot be had, and STATUS must not
 * fail for that. The heap figures need no fd.
 */
function brokerMemory(): BrokerStatus['memory'] {
  const heap = getHeapStatistics();
  let rss: number | null;
  try {
    rss = process.memoryUsage.rss();
  } catch {
    rss = null;
  }
  return {
    rss,
    heapUsed: heap.used_heap_size,
    heapTotal: heap.total_heap_size,
    external: heap.external_memory,
  };
}
