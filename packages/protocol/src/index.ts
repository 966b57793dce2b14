export { BrandedError, type BrandedErrorClass } from './branded-error.js';
export {
  CAP_HANDLE_PASSING,
  CHANNEL_CAP_CLIENT_PRELUDE,
  CHANNEL_CAP_FD_STORE,
  CHANNEL_CAP_OFFER_WITH_FD,
  ENVELOPE_VERSION,
  FRAME_HEADER_BYTES,
  FRAMING_VERSION,
  HANDOFF_TOKEN_BYTES,
  MAX_FRAME_BYTES,
  MAX_HELLO_BYTES,
  PROBE_NONCE_BYTES,
  PROTOCOL_VERSION,
} from './constants.js';
export { AdminReplyKind, AdminVerb, ErrorCode, FrameKind, PayloadEncoding } from './enums.js';
export {
  FramingError,
  type FramingErrorCode,
  type FramingErrorDetails,
  ProtocolError,
  RegistryError,
  type RegistryErrorCode,
} from './errors.js';
export { Frame } from './frame-codec.js';
export { FrameDecoder, type FrameDecoderOptions } from './frame-decoder.js';
export {
  type Correlation,
  cancelFrame,
  eventFrame,
  type FrameInit,
  type ReplyInit,
  requestFrame,
  responseFrame,
} from './frames.js';
export {
  type DecodedFrame,
  decodeFrameHeader,
  encodeFramed,
  type FrameHeader,
  type FramingOptions,
  tryDecodeFramed,
} from './framing.js';
export { HandoffAck, HandoffOffer } from './handoff-codec.js';
export { Hello, HelloReply, type HelloResult, Negotiated, Refused } from './hello-codec.js';
export type { MessageType } from './message-type.js';
export {
  AdminReply,
  AdminRequest,
  ChannelRegistration,
  DaemonProcess,
  Endpoint,
  FdStoreEntries,
} from './messages.js';
export {
  ADMIN_PAYLOAD_PROTOCOL,
  CONSUMER_RANGE,
  CONTROL_PAYLOAD_PROTOCOL,
  createProtocolRegistry,
  definePayloadProtocol,
  FIRST_PARTY_PAYLOAD_PROTOCOLS,
  FIRST_PARTY_RANGE,
  HANDOFF_PAYLOAD_PROTOCOL,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  type IdRange,
  isFirstParty,
  isPrivateUseId,
  isRegisteredConsumerId,
  KNOWN_CONSUMER_PAYLOAD_PROTOCOLS,
  type PayloadProtocol,
  PRIVATE_USE_RANGE,
  type ProtocolRegistry,
  RESERVED_RANGE,
  SESSION_STREAM_PAYLOAD_PROTOCOL,
} from './registry.js';
export { utf8ByteLength } from './utf8.js';
export {
  type HelloContext,
  MAX_CLIENT_LIB_FIELD_BYTES,
  MAX_CLIENT_VERSION_BYTES,
  MAX_WANTED_VERSION_BYTES,
  SERVICE_NAME_PATTERN,
  VERSION_PATTERN,
  type Verdict,
  validateHello,
  validateServiceName,
  validateVersion,
} from './validation.js';
export { bigIntReader, bigIntWriter } from './wire-io.js';
