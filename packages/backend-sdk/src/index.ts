// The fd helpers a daemon needs to keep fds in the broker's fd store
// (sockets and memfds), and a socketpair (FdSocket.pair) to talk to a
// successor over, so it need not depend on @handoff/fdpass itself.
export {
  closeFd,
  FdSocket,
  fdOf,
  memfdCreate,
  type ReceivedMessage,
  socketFromFd,
} from '@handoff/fdpass';
export { BROKER_ENV, BrokerAttachment, type BrokerAttachmentOptions } from './broker-attachment.js';
export {
  type CrashReport,
  type CrashReportEntry,
  type CrashReportOptions,
  crashReportsDir,
  crashStateDir,
  installCrashReports,
  readCrashReports,
  STATE_DIR_ENV,
  writeCrashReport,
} from './crash-report.js';
export { type CurrentDaemonOptions, currentDaemonProcess } from './daemon-identity.js';
export {
  DaemonPathError,
  type DaemonPathErrorCode,
  defaultDaemonSocketPath,
} from './daemon-paths.js';
export { DispatchError, type DispatchErrorCode } from './dispatch/errors.js';
export type { DispatchListen } from './dispatch/listeners.js';
export type { DispatchLogger, DispatchLogLevel } from './dispatch/log.js';
export { createDispatcher, type Dispatcher } from './dispatch/master.js';
export {
  DISPATCHER_METRICS_CONTENT_TYPE,
  type DispatcherErrorKind,
  type DispatcherStats,
  type DispatcherWorkerStats,
} from './dispatch/metrics.js';
export type {
  DispatcherOptions,
  DispatcherOptionsBase,
  FnDispatcherOptions,
  ScriptDispatcherOptions,
  SpawnBackoff,
} from './dispatch/options.js';
export {
  type DispatchEndpoint,
  DispatchWireError,
  type DispatchWireErrorCode,
} from './dispatch/wire.js';
export {
  type DispatchedConnection,
  type DispatchHandler,
  type DispatchStopEvent,
  type DispatchWorker,
  type ServeDispatchedOptions,
  serveDispatched,
} from './dispatch/worker.js';
export { DISPATCH_CHANNEL_ENV } from './dispatch/worker-channel.js';
export type { WorkerEvent, WorkerExitEvent } from './dispatch/worker-pool.js';
export { BackendSdkError } from './errors.js';
export {
  FD_STORE_NAME,
  FdStoreClientError,
  type FdStoreClientErrorCode,
  type FdToStore,
  MAX_FD_STORE_METADATA_BYTES,
  type StoredFdEntry,
} from './fd-store-client.js';
export {
  createHashCache,
  type FileHashes,
  type HashCache,
  type HashCacheOptions,
} from './file-hashes.js';
export {
  FrameClient,
  FrameClientError,
  type FrameClientErrorCode,
  type FrameClientOptions,
  type RequestOptions,
} from './frame-client.js';
export {
  HandoffAcceptor,
  HandoffAcceptorError,
  type HandoffAcceptorErrorCode,
  type HandoffAcceptorOptions,
  type HandoffEndpointOptions,
  type HandoffEvent,
  type HandoffRejection,
  listenForHandoffs,
} from './handoff-acceptor.js';
export { defaultHashStoreDir } from './hash-store.js';
export { collectGarbageNow, type HeapSettleResult } from './heap-settle.js';
export {
  IdentitySidecarError,
  readIdentitySidecar,
  removeIdentitySidecar,
  writeIdentitySidecar,
} from './identity-sidecar.js';
export {
  BackendEndpointMux,
  type BackendEndpointMuxOptions,
  type LegacyClassification,
  type LegacyDetector,
  MuxError,
  type MuxErrorCode,
  type MuxVerdict,
} from './mux.js';
export { PeerPolicy, type PeerVerdict } from './peer-policy.js';
export {
  PrivateSocketError,
  type PrivateSocketErrorCode,
  preparePrivateSocketPath,
} from './private-socket.js';
export type { DaemonIdentity } from './probe-answer.js';
export {
  type ExpectedIdentity,
  ProbeError,
  type ProbeErrorCode,
  type ProbeOptions,
  probeDaemon,
  type VerifiedIdentity,
} from './prober.js';
export { ProcInfoError, type ProcInfoErrorCode } from './proc-info.js';
export { type DaemonServer, serveDaemon } from './server/daemon-server.js';
export {
  type RequestAbortedCode,
  RequestAbortedError,
  ServerConnectionError,
  type ServerErrorCode,
} from './server/errors.js';
export {
  InheritedListenerError,
  type InheritedListenerErrorCode,
} from './server/inherited-listener.js';
export type {
  CloseOptions,
  HandlerResult,
  LegacyHandler,
  RequestContext,
  RequestHandler,
  ServeDaemonOptions,
} from './server/options.js';
export { SlotSet } from './slot-set.js';
