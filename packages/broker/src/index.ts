// Public surface of @handoff/broker: embedding the broker (startBroker and
// what a running Broker exposes), service definitions, the JSON the admin
// verbs answer with, and everything in @handoff/broker/client. The pieces
// the server and the CLI are built from stay internal. Re-exports only.

export { ADMIN_JSON_SCHEMA_VERSION } from './admin.js';
export type {
  BackendHealthEntry,
  BackendHealthReport,
  BrokerStatus,
  HealthCheck,
  HealthReport,
  InstanceInfo,
  ReadinessReport,
  UpgradeReport,
} from './admin-provider.js';
export type { BackendInfo, BackendRegistryView, Broker, BrokerOptions } from './broker-api.js';
export { startBroker } from './broker-server.js';
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
export { FdStoreError, type FdStoreErrorCode } from './fd-store-wire.js';
export {
  RestartError,
  type RestartErrorCode,
  type RestartOptions,
  type RestartOutcome,
} from './lifecycle/rolling-restart.js';
export type { SpawnFailure } from './logs/failure-tail.js';
export type { LogFileStats } from './logs/log-file.js';
export { LogsError, type LogsErrorCode } from './logs/reader.js';
export type { LogRecord } from './logs/record.js';
export type { LogsStatus } from './logs/status.js';
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
export { defaultConfigDir, defaultStateDir } from './paths.js';
export {
  SocketActivationError,
  type SocketActivationErrorCode,
} from './systemd/errors.js';
export {
  UpgradeError,
  type UpgradeErrorCode,
  UpgradeStateError,
  type UpgradeStateErrorCode,
} from './upgrade/errors.js';
export type { UpgradeResult } from './upgrade/handover.js';
export type { SuccessorCommand } from './upgrade/successor.js';
