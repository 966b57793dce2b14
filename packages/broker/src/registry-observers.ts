// What the broker's log and metrics say about its daemons as the registry
// sees them come and go: ready, gone, a spawn that never became ready. The
// journal's view of the same events is events/observe.ts's.
import type { Logger } from 'pino';
import type { BackendRegistry } from './backend-registry.js';
import type { ServiceDefinition } from './config/definition.js';
import type { BrokerMetrics } from './metrics.js';

export function observeRegistry(
  registry: BackendRegistry,
  counters: BrokerMetrics,
  log: Logger,
): void {
  registry.on('gone', (backend, reason) => {
    counters.activeBackends.set(registry.list().length);
    log.info({ service: backend.key, reason }, 'backend gone');
  });
  // A daemon that never became ready (lifecycle/spawn-readiness.ts says how far it got).
  registry.on('spawn-failed', (definition: ServiceDefinition, message: string) =>
    log.warn({ service: `${definition.name}@${definition.version}` }, message),
  );
  registry.on('ready', (backend) => {
    counters.activeBackends.set(registry.list().length);
    log.info({ service: backend.key, daemon_pid: backend.pid }, 'backend ready');
  });
}
