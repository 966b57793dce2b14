// Public surface of @handoff/broker: embedding the broker (startBroker and
// what a running Broker exposes), service definitions, the JSON the admin
// verbs answer with, and everything in @handoff/broker/client. The pieces
// the server and the CLI are built from stay internal. Re-exports only.

export { ADMIN_JSON_SCHEMA_VERSION } from './admin.js';
export type {
  BrokerDump,
  ChannelFacts,
  ConfigOrigin,
  ConfigSource,
  ConfigValue,
  DaemonFacts,
  ServiceDiagnosis,
  ServiceFacts,
  SpawnBudgetFacts,
} from './admin-diagnostics.js';
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
export { startBroker } from './broker-launch.js';
export {
  AdminClientError,
  type AdminClientErrorCode,
  type AdminRequestOptions,
  adminRequest,
  type ConnectRetryOptions,
  ConnectServiceError,
  type ConnectServiceErrorCode,
  type ConnectServiceOptions,
  clearEndpointCache,
  connectService,
  defaultBrokerSocketPath,
  ENDPOINT_CACHE_ENV,
  type ServiceConnection,
} from './client/index.js';
export { ConfigError, type ConfigErrorCode } from './config/config-error.js';
export {
  DEFAULT_READY_TIMEOUT_MS,
  parseServiceDefinition,
  ServiceConfigError,
  type ServiceConfigErrorCode,
  type ServiceDefinition,
} from './config/definition.js';
export type { ServiceConfigLoad } from './config/load.js';
export type { ConfigReloadFailure, ConfigReloadStatus } from './config/reload-state.js';
export { BrokerError } from './errors.js';
export { EVENT_KINDS, type EventKind, type JournalEvent } from './events/event.js';
export {
  DEFAULT_JOURNAL_FILES,
  DEFAULT_JOURNAL_MAX_BYTES,
  type EventInput,
  EventJournal,
  type EventJournalOptions,
  type JournalStats,
} from './events/journal.js';
export {
  type EventFilter,
  EventsError,
  type EventsErrorCode,
  readEvents,
} from './events/reader.js';
export { FdStoreError, type FdStoreErrorCode } from './fd-store-wire.js';
export {
  HELLO_RATE_DEFAULTS,
  HelloRateLimitError,
  type HelloRateLimitOptions,
} from './hello-rate-limit.js';
export {
  RestartError,
  type RestartErrorCode,
  type RestartOptions,
  type RestartOutcome,
} from './lifecycle/rolling-restart.js';
export {
  type BrokerLoggerOptions,
  createBrokerLogger,
  LOG_FORMATS,
  type LogFormat,
} from './log-output.js';
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
export {
  type MetricFamily,
  type MetricSample,
  type OpenMetricsLimits,
  OpenMetricsParseError,
  type OpenMetricsParseErrorCode,
  type ParsedMetrics,
  parseOpenMetrics,
} from './openmetrics-parse.js';
export { defaultConfigDir, defaultStateDir } from './paths.js';
export { RootRefusalError, type RootRefusalErrorCode } from './root-refusal.js';
export { rpSharedBrokerPath } from './rp-compat/address.js';
export {
  RpAddressError,
  type RpAddressErrorCode,
  ServicedefError,
  type ServicedefErrorCode,
} from './rp-compat/errors.js';
export type { RpCompatOptions } from './rp-compat/rp-compat.js';
export { loadServicedefs, rpServicedefDir } from './rp-compat/servicedef-load.js';
export {
  SocketActivationError,
  type SocketActivationErrorCode,
} from './systemd/errors.js';
export { BROKER_NODE_FLAGS } from './systemd/units.js';
export {
  UpgradeError,
  type UpgradeErrorCode,
  UpgradeStateError,
  type UpgradeStateErrorCode,
} from './upgrade/errors.js';
export type { UpgradeResult } from './upgrade/handover.js';
export type { SuccessorCommand } from './upgrade/successor.js';
