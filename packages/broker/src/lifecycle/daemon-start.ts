// Bringing one daemon process up for the registry: the spawn budget, the
// private services directory, the endpoint the broker binds for it
// (owned-socket.ts), and the spawn (daemon-spawn.ts). Whether it becomes
// ready is spawn-readiness.ts's; which backend it is, the registry's.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode } from '@handoff/protocol';
import type { ServiceDefinition } from '../config/definition.js';
import { type LaunchedDaemon, launchDaemon, type OutputOptions } from '../daemon-spawn.js';
import { RouteError, shuttingDown } from '../route-error.js';
import type { SpawnBudget } from '../spawn-budget.js';
import { bindDaemonSocket, type OwnedDaemonSocket } from './owned-socket.js';

/**
 * The two endpoints a service@version's daemon may serve: a rolling
 * restart starts the replacement on the slot the running one does not
 * use, so that probing it can reach nothing else. Rediscovery looks at both.
 */
export function endpointSlots(
  servicesDir: string,
  definition: ServiceDefinition,
): [string, string] {
  // Equal lengths: a path that fits the 108-byte sun_path limit on one
  // slot fits on the other (service names never contain "_").
  return [
    join(servicesDir, `${definition.name}-${definition.version}.sock`),
    join(servicesDir, `${definition.name}_${definition.version}.sock`),
  ];
}

export interface StartDaemonOptions {
  servicesDir: string;
  controlPath: string;
  budget: SpawnBudget;
  /** Whether this spawn counts against the spawn budget. */
  budgeted: boolean;
  onSpawn?: ((outcome: 'ok' | 'failed' | 'rate_limited') => void) | undefined;
  output?: OutputOptions | undefined;
  /** Nothing could be started (no such command, say): status reports it, as a daemon's failure. */
  spawnFailed?: ((message: string, tail: string) => void) | undefined;
  ownDaemonSockets?: boolean | undefined;
  /** True once the registry closed: nothing may be spawned. */
  closed(): boolean;
}

/**
 * Spawns `definition`'s daemon to serve `endpoint`, with the broker's
 * listener on it unless ownDaemonSockets is false. Throws RouteError
 * (RATE_LIMITED, BACKEND_SPAWN_FAILED with details.reason, SHUTTING_DOWN),
 * leaving nothing behind.
 */
export async function startDaemon(
  definition: ServiceDefinition,
  endpoint: string,
  options: StartDaemonOptions,
): Promise<{ launched: LaunchedDaemon; listener: OwnedDaemonSocket | null }> {
  const key = `${definition.name}@${definition.version}`;
  // An operator's restart is not a crash loop: only spawns for Hellos count.
  const allowed = options.budgeted ? options.budget.tryAcquire(key) : { ok: true as const };
  if (!allowed.ok) {
    options.onSpawn?.('rate_limited');
    throw new RouteError(
      ErrorCode.RATE_LIMITED,
      `spawn budget for ${key} exhausted`,
      allowed.retryAfterMs,
      { service: key },
    );
  }
  await mkdir(options.servicesDir, { recursive: true, mode: 0o700 });
  // close() may have run while the directory was made.
  if (options.closed()) throw shuttingDown(key);
  let listener: OwnedDaemonSocket | null = null;
  if (options.ownDaemonSockets !== false && definition.ownSocket) {
    listener = await bindDaemonSocket(endpoint).catch((error: Error) => {
      options.onSpawn?.('failed');
      throw new RouteError(
        ErrorCode.BACKEND_SPAWN_FAILED,
        `cannot bind ${endpoint}: ${error.message}`,
        0,
        {
          service: key,
          reason: 'bind failed',
        },
      );
    });
    if (options.closed()) {
      listener.release({ unlink: true });
      throw shuttingDown(key);
    }
  }
  let launched: LaunchedDaemon;
  try {
    launched = await launchDaemon(definition, {
      endpoint,
      controlPath: options.controlPath,
      ...options.output,
      ...(listener ? { listenFd: listener.fd } : {}),
    });
  } catch (error) {
    listener?.release({ unlink: true });
    options.onSpawn?.('failed');
    const message = `cannot spawn ${definition.command}: ${(error as Error).message}`;
    options.spawnFailed?.(message, '');
    throw new RouteError(ErrorCode.BACKEND_SPAWN_FAILED, message, 0, {
      service: key,
      reason: 'spawn error',
    });
  }
  // The exec ran on a pool thread: close() may have run meanwhile, and a
  // daemon started now would be nobody's to stop.
  if (options.closed()) {
    launched.child.kill('SIGKILL');
    launched.output.close();
    listener?.release({ unlink: true });
    throw shuttingDown(key);
  }
  return { launched, listener };
}
