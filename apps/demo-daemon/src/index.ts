// Public surface of @handoff/demo-daemon. Re-exports only.
export {
  DemoKvClient,
  type DemoKvConnectOptions,
  DemoKvError,
  type DemoKvErrorCode,
  type DemoKvRequestOptions,
  type DemoKvRoute,
  type KeyOrValue,
} from './client.js';
export {
  type DemoDaemon,
  type DemoDaemonOptions,
  MAX_ANSWERABLE_VALUE_BYTES,
  type StopReason,
  startDemoDaemon,
} from './daemon.js';
export {
  type DecodeOptions,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  KV_PAYLOAD_PROTOCOL,
  KvProtocolError,
  type KvProtocolErrorCode,
} from './kv-protocol.js';
export {
  type DaemonCounters,
  type KvCommand,
  type KvErrorCode,
  type KvReply,
  KvService,
  type KvStats,
} from './kv-service.js';
export {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_MAX_VALUE_BYTES,
  DEFAULT_MAX_WAIT_MS,
  DEFAULT_MAX_WAITERS,
  type KvHit,
  KvStore,
  KvStoreError,
  type KvStoreErrorCode,
  type KvStoreOptions,
  type KvStoreStats,
  MAX_TTL_MS,
} from './kv-store.js';
export {
  DEFAULT_MAX_QUEUED_ANSWER_BYTES,
  INTERNAL_ERROR_CODE,
  LineConnection,
  type LineConnectionOptions,
} from './line-connection.js';
export {
  DEFAULT_MAX_LINE_BYTES,
  detectLineProtocol,
  escapeToken,
  formatCommandLine,
  formatErrorLine,
  formatReplyLine,
  type LineErrorCode,
  LineProtocolError,
  LineSplitter,
  parseCommandLine,
} from './line-protocol.js';
export {
  DEMO_KV_SERVICE_NAME,
  DEMO_KV_SERVICE_VERSION,
  type DemoKvServiceDefinition,
  type DemoKvServiceOptions,
  demoKvServiceDefinition,
} from './service-definition.js';
