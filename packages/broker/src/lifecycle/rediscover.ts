// Finding daemons an earlier broker left running, from their identity
// sidecars and a verified probe, on either of a service@version's two
// endpoint slots (a rolling restart alternates them). The registry records
// what is found (adoptRunning); this file only looks.
import { probeDaemon, readIdentitySidecar, type VerifiedIdentity } from '@handoff/backend-sdk';
import type { DaemonProcess } from '@handoff/protocol';
import type { Backend } from '../backend.js';
import type { ServiceDefinition } from '../config/definition.js';
import { spawnBudgetKey } from '../spawn-budget.js';

export interface RediscoverHost {
  get(key: string): Backend | undefined;
  slotsFor(definition: ServiceDefinition): [string, string];
  adoptRunning(definition: ServiceDefinition, endpoint: string, identity: DaemonProcess): Backend;
}

/**
 * Adopts, per definition with no backend yet, the daemon answering on one of
 * its slots; when both answer (a broker stopped mid-restart) the one started
 * last, the replacement.
 */
export async function rediscoverBackends(
  host: RediscoverHost,
  definitions: readonly ServiceDefinition[],
): Promise<Backend[]> {
  const found: Backend[] = [];
  for (const definition of definitions) {
    if (host.get(spawnBudgetKey(definition.name, definition.version))) continue;
    const live: { endpoint: string; verified: VerifiedIdentity }[] = [];
    for (const endpoint of host.slotsFor(definition)) {
      const verified = await verify(endpoint);
      if (verified) live.push({ endpoint, verified });
    }
    live.sort(
      (a, b) =>
        Number(b.verified.identity.startedAtUnixMs) - Number(a.verified.identity.startedAtUnixMs),
    );
    const newest = live[0];
    if (newest)
      found.push(host.adoptRunning(definition, newest.endpoint, newest.verified.identity));
  }
  return found;
}

async function verify(endpoint: string): Promise<VerifiedIdentity | null> {
  const sidecar = await readIdentitySidecar(`${endpoint}.identity.json`).catch(() => null);
  if (!sidecar) return null;
  try {
    return await probeDaemon(endpoint, { pid: sidecar.process.pid }, { timeoutMs: 1000 });
  } catch {
    // Stale sidecar: nothing to rediscover there.
    return null;
  }
}
