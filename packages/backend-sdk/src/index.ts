export { BROKER_ENV, BrokerAttachment, type BrokerAttachmentOptions } from './broker-attachment.js';
export { type CurrentDaemonOptions, currentDaemonProcess } from './daemon-identity.js';
export { defaultDaemonSocketPath } from './daemon-paths.js';
export {
  type CloseOptions,
  type DaemonServer,
  type HandlerResult,
  type LegacyHandler,
  type RequestContext,
  type RequestHandler,
  type ServeDaemonOptions,
  ServerConnectionError,
  type ServerErrorCode,
  serveDaemon,
} from './daemon-server.js';
export { DispatchError, type DispatchErrorCode } from './dispatch-error.js';
export type { DispatchListen } from './dispatch-listeners.js';
export type { DispatchLogger, DispatchLogLevel } from './dispatch-log.js';
export {
  type DispatchEndpoint,
  DispatchWireError,
  type DispatchWireErrorCode,
} from './dispatch-wire.js';
export {
  DISPATCH_CHANNEL_ENV,
  type DispatchedConnection,
  type DispatchHandler,
  type DispatchStopEvent,
  type DispatchWorker,
  type ServeDispatchedOptions,
  serveDispatched,
} from './dispatch-worker.js';
export {
  createDispatcher,
  type Dispatcher,
  type DispatcherOptions,
  type DispatcherOptionsBase,
  type FnDispatcherOptions,
  type ScriptDispatcherOptions,
  type SpawnBackoff,
  type WorkerEvent,
  type WorkerExitEvent,
} from './dispatcher.js';
export {
  DISPATCHER_METRICS_CONTENT_TYPE,
  type DispatcherErrorKind,
  type DispatcherStats,
  type DispatcherWorkerStats,
} from './dispatcher-metrics.js';
export { createHashCache, type FileHashes, type HashCache } from './file-hashes.js';
export {
  FrameClient,
  FrameClientError,
  type FrameClientErrorCode,
  type FrameClientOptions,
  type RequestOptions,
} from './frame-client.js';
export {
  HandoffAcceptor,
  type HandoffAcceptorOptions,
  type HandoffEndpointOptions,
  type HandoffEvent,
  type HandoffRejection,
  listenForHandoffs,
} from './handoff-acceptor.js';
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
export { ProcInfoError } from './proc-info.js';
export { SlotSet } from './slot-set.js';
