// Public surface of @handoff/broker/client: what a client of the broker
// calls, and nothing that would load the broker server, pino or the fdpass
// addon (test/client-entry.int.test.ts holds it to that). Re-exports only.

export { BrokerError } from '../errors.js';
export { defaultBrokerSocketPath } from '../paths.js';
export {
  AdminClientError,
  type AdminClientErrorCode,
  type AdminRequestOptions,
  adminRequest,
} from './admin-client.js';
export {
  type ConnectRetryOptions,
  ConnectServiceError,
  type ConnectServiceErrorCode,
  type ConnectServiceOptions,
  connectService,
  type ServiceConnection,
} from './connect-service.js';
export { clearEndpointCache, ENDPOINT_CACHE_ENV } from './endpoint-cache.js';
