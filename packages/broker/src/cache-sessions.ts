// The broker's end of the endpoint cache's session reports
// (client/cache-session-report.ts): an admin request CACHE_SESSION_VERB
// naming a defined service counts one session that went straight to that
// service's daemon, in endpoint_cache_sessions_total{service}. Names that
// are not defined services are not counted (labels stay bounded).
import { AdminReply, AdminReplyKind } from '@handoff/protocol';
import type { AdminProvider } from './admin-provider.js';
import type { ServiceDefinition } from './config/definition.js';
import { definitionsNamed } from './config/definition-index.js';

export { CACHE_SESSION_VERB } from './client/cache-session-report.js';

/** The provider's `cacheSession`: counts one session of `service` when it is defined. */
export function cacheSessionCounter(
  definedServices: () => readonly ServiceDefinition[],
  count: (service: string) => void,
): (service: string) => boolean {
  return (service) => {
    // By the name index: one report per cached session must not scan every definition.
    if (service === '' || definitionsNamed(definedServices(), service).length === 0) return false;
    count(service);
    return true;
  };
}

/** The answer to CACHE_SESSION_VERB: exit 0 when counted, 1 when the service is not defined. */
export function cacheSessionReply(
  service: string,
  cacheSession: NonNullable<AdminProvider['cacheSession']>,
): AdminReply {
  const counted = cacheSession(service);
  return AdminReply.create({
    kind: AdminReplyKind.TEXT,
    body: counted ? '' : `no service ${JSON.stringify(service)} is defined\n`,
    exitCode: counted ? 0 : 1,
  });
}
