export {
  FrameClient,
  FrameClientError,
  type FrameClientErrorCode,
  type FrameClientOptions,
  type RequestOptions,
} from './frame-client.js';
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
