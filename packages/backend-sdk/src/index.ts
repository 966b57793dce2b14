export { type CurrentDaemonOptions, currentDaemonProcess } from './daemon-identity.js';
export { createHashCache, type FileHashes, type HashCache } from './file-hashes.js';
export {
  FrameClient,
  FrameClientError,
  type FrameClientErrorCode,
  type FrameClientOptions,
  type RequestOptions,
} from './frame-client.js';
export {
  formatIdentitySidecar,
  IdentitySidecarError,
  parseIdentitySidecar,
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
  type DaemonIdentity,
  encodeIdentityAnswer,
  MalformedProbeError,
  probeAnswerWire,
  probeNonceFromFrame,
} from './probe-answer.js';
export { bootId, ProcInfoError, processStartTimeMs, startTicksFromStat } from './proc-info.js';
