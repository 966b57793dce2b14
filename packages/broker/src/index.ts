// Public surface of @handoff/broker. Re-exports only.
export {
  ADMIN_JSON_CONTENT_TYPE,
  ADMIN_JSON_SCHEMA_VERSION,
  ADMIN_TEXT_CONTENT_TYPE,
  AdminError,
  type AdminErrorCode,
  type AdminProvider,
  type BackendHealthEntry,
  type BackendHealthReport,
  type BrokerStatus,
  DEFAULT_DRAIN_DEADLINE_MS,
  EXIT_CHECK_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  type HealthCheck,
  type HealthReport,
  handleAdminRequest,
  type InstanceInfo,
  MAX_DRAIN_DEADLINE_MS,
  type ReadinessReport,
  verbName,
} from './admin.js';
export {
  AdminClientError,
  type AdminClientErrorCode,
  type AdminRequestOptions,
  adminRequest,
} from './admin-client.js';
export { type Backend, BackendRegistry, RouteError } from './backend-registry.js';
export { type Broker, type BrokerOptions, startBroker } from './broker-server.js';
export {
  ConnectServiceError,
  type ConnectServiceErrorCode,
  type ConnectServiceOptions,
  connectService,
  type ServiceConnection,
} from './client.js';
export { BackendChannel, type OfferOutcome } from './control-channel.js';
export {
  type BrokerMetrics,
  type BrokerMetricsOptions,
  type Counter,
  createBrokerMetrics,
  createMetricsRegistry,
  fdUsageRatio,
  type Gauge,
  type GaugeCollector,
  type GaugeSample,
  HANDOFF_DURATION_BUCKETS,
  HELLO_DURATION_BUCKETS,
  type Histogram,
  type Labels,
  MetricsError,
  type MetricsErrorCode,
  type MetricsRegistry,
  OPENMETRICS_CONTENT_TYPE,
  openFdCount,
  parseSoftNofileLimit,
} from './metrics.js';
export { defaultBrokerSocketPath, defaultConfigDir } from './paths.js';
export {
  EMBEDDED_SOURCE,
  loadServiceDefinitions,
  MAX_SERVICE_CONFIG_BYTES,
  parseServiceDefinition,
  ServiceConfigError,
  type ServiceConfigErrorCode,
  type ServiceConfigLoad,
  type ServiceConfigSources,
  type ServiceConfigWatcher,
  type ServiceDefinition,
  type WatchServiceOptions,
  watchServiceDefinitions,
} from './service-config.js';
export {
  SpawnBudget,
  type SpawnBudgetOptions,
  type SpawnBudgetVerdict,
  spawnBudgetKey,
} from './spawn-budget.js';
export {
  compareVersions,
  DEFAULT_BLOCKED_RETRY_AFTER_MS,
  type SelectOptions,
  selectDefinition,
  type VersionSelection,
} from './version-policy.js';
