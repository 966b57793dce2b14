// Which definitions could have a daemon to rediscover at broker start: those
// with an identity sidecar on one of their endpoint slots. One readdir of the
// services directory instead of an open() per slot — with 10,000 definitions
// the 20,000 failed opens were most of a 2–3 s startup.
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import type { ServiceDefinition } from './config/definition.js';

/**
 * The definitions, in order, with a `<slot>.identity.json` file in
 * `servicesDir` for either slot. If the directory cannot be listed
 * (other than not existing), all of them: rediscovery then looks itself.
 */
export async function withSidecars(
  servicesDir: string,
  definitions: readonly ServiceDefinition[],
  slotsFor: (definition: ServiceDefinition) => readonly string[],
): Promise<ServiceDefinition[]> {
  let names: Set<string>;
  try {
    names = new Set(await readdir(servicesDir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    return [...definitions];
  }
  return definitions.filter((definition) =>
    slotsFor(definition).some((slot) => names.has(`${basename(slot)}.identity.json`)),
  );
}
