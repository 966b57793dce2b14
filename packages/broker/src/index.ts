// Public surface of @handoff/broker: embedding the broker (startBroker and
// what a running Broker exposes), service definitions, the JSON the admin
// verbs answer with, and everything in @handoff/broker/client. The pieces
// the server and the CLI are built from stay internal. Re-exports only.
export type {
  BackendHealthEntry,
  BackendHealthReport,
  BrokerStatus,
  HealthCheck,
  HealthReport,
  InstanceInfo,
  ReadinessReport,
} from './admin.js';
export { ADMIN_JSON_SCHEMA_VERSION } from './admin.js';
export {
  type BackendInfo,
  type BackendRegistryView,
  type Broker,
  type BrokerOptions,
  startBroker,
} from './broker-server.js';
export {
  AdminClientError,
  type AdminClientErrorCode,
  type AdminRequestOptions,
  adminRequest,
  ConnectServiceError,
  type ConnectServiceErrorCode,
  type ConnectServiceOptions,
  connectService,
  defaultBrokerSocketPath,
  type ServiceConnection,
} from './client/index.js';
export {
  parseServiceDefinition,
  ServiceConfigError,
  type ServiceConfigErrorCode,
  type ServiceDefinition,
} from './config/definition.js';
export type { ServiceConfigLoad } from './config/load.js';
export { BrokerError } from './errors.js';
export {
  type Counter,
  type Gauge,
  type GaugeCollector,
  type GaugeSample,
  type Histogram,
  type Labels,
  MetricsError,
  type MetricsErrorCode,
  type MetricsRegistry,
} from './metrics.js';
export { defaultConfigDir } from './paths.js';
export {
  SocketActivationError,
  type SocketActivationErrorCode,
} from './systemd/errors.js';
