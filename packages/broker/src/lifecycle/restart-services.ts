// Which daemons a RESTART request means, and their restarts in turn: the
// running backends of a configured service (one version, or each running
// one), each rolled with the definition now in force. The verb's parsing
// and reply are restart-verb.ts's; a restart itself, rolling-restart.ts's.
import { AdminError } from '../admin.js';
import type { Backend } from '../backend.js';
import type { ServiceDefinition } from '../config/definition.js';
import type { RestartProvider } from './restart-verb.js';
import { RestartError, type RestartOptions, type RestartOutcome } from './rolling-restart.js';

export interface RestartTargets {
  get(key: string): Backend | undefined;
  list(): Backend[];
  restart(definition: ServiceDefinition, options: RestartOptions): Promise<RestartOutcome>;
}

/** The RESTART provider over a registry and the definitions in force. */
export function restartServices(
  registry: RestartTargets,
  definitions: () => readonly ServiceDefinition[],
): RestartProvider {
  return async ({ serviceName, version }, options, done) => {
    const configured = definitions().filter(
      (d) => d.name === serviceName && (version === undefined || d.version === version),
    );
    const running = registry
      .list()
      .filter((b) => b.definition.name === serviceName && registry.get(b.key) === b)
      .filter((b) => version === undefined || b.definition.version === version);
    if (configured.length === 0 && running.length === 0)
      throw new AdminError(
        'SERVICE_UNKNOWN',
        `no service named ${JSON.stringify(version ? `${serviceName}@${version}` : serviceName)} is configured`,
      );
    const key = version ? `${serviceName}@${version}` : serviceName;
    if (running.length === 0)
      throw new RestartError(
        'NOT_RUNNING',
        key,
        `${key} has no running daemon to restart (the next client starts one)`,
      );
    const restartOptions: RestartOptions = {
      ...(options.readyDeadlineMs === undefined
        ? {}
        : { readyDeadlineMs: options.readyDeadlineMs }),
      ...(options.drainMs === undefined ? {} : { drainMs: options.drainMs }),
    };
    for (const backend of running.sort((a, b) => a.key.localeCompare(b.key))) {
      // The definition now in force (a changed command or entry script), else the one it runs.
      const definition =
        configured.find((d) => d.version === backend.definition.version) ?? backend.definition;
      const outcome = await registry.restart(definition, restartOptions);
      done.push({
        service: definition.name,
        version: definition.version,
        oldPid: outcome.oldPid,
        newPid: outcome.newPid,
        endpoint: outcome.endpoint,
        tookMs: outcome.tookMs,
        drainMs: outcome.drainMs,
      });
    }
  };
}
