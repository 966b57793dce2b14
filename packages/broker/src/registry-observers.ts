// What the broker's log and metrics say about its daemons as the registry
// sees them come and go: ready, gone, a spawn that never became ready. The
// journal's view of the same events is events/observe.ts's.
import type { Logger } from 'pino';
import type { BackendRegistry } from './backend-registry.js';
import type { ServiceDefinition } from './config/definition.js';
import type { BootPriorityOutcome } from './lifecycle/boot-priority.js';
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
  // A replacement's CPU weight while it boots (lifecycle/boot-priority.ts):
  // only a weight that could not be given back is worth a warning.
  registry.on('boot-priority', (backend, outcome: BootPriorityOutcome, detail: string) => {
    const fields = { service: backend.key, daemon_pid: backend.pid, detail };
    if (outcome === 'restore-failed') log.warn(fields, 'replacement boot priority not restored');
    else log.debug(fields, `replacement boot priority ${outcome}`);
  });
  registry.on('ready', (backend) => {
    counters.activeBackends.set(registry.list().length);
    log.info({ service: backend.key, daemon_pid: backend.pid }, 'backend ready');
  });
}
