// Wire constants of broker protocol v1 (DESIGN §2.1, §2.2). The framing
// byte and the negotiated protocol version are separate axes: one says how
// bytes are cut into frames, the other what the frames mean.

/** First byte of every frame: the framing format version (u8). */
export const FRAMING_VERSION = 1;
/** The broker protocol version negotiated in Hello (u32). */
export const PROTOCOL_VERSION = 1;
/** `Frame.envelopeVersion` is always 1 in v1. */
export const ENVELOPE_VERSION = 1;
/** `[u8 framing_version][u32 little-endian body_length]`. */
export const FRAME_HEADER_BYTES = 5;
/** No frame body may exceed 16 MiB; larger drops the connection. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** The first Hello on a broker connection is capped at 64 KiB. */
export const MAX_HELLO_BYTES = 64 * 1024;
/** Client/server capability bit: can adopt a handed-off connection. */
export const CAP_HANDLE_PASSING = 1n << 0n;
/**
 * Ours — control-channel capability (ChannelRegistration.channel_capabilities):
 * the backend writes an offer's client_prelude to the adopted client.
 */
export const CHANNEL_CAP_CLIENT_PRELUDE = 1n << 0n;
/**
 * Ours — control-channel capability: on a seqpacket channel the backend
 * takes an offer as one message, the 16 token bytes then the framed
 * HandoffOffer, with the client's fd attached (one sendmsg, one wake-up,
 * instead of the reference's token message followed by the frame).
 */
export const CHANNEL_CAP_OFFER_WITH_FD = 1n << 1n;
/**
 * Ours — control-channel capability: the backend keeps fds in the broker's
 * fd store (FdStoreEntries EVENT frames, both ways; see broker_v1.proto).
 */
export const CHANNEL_CAP_FD_STORE = 1n << 2n;
/** Handoff tokens are 16 random bytes. */
export const HANDOFF_TOKEN_BYTES = 16;
/** Identity probe nonces are 32 random bytes. */
export const PROBE_NONCE_BYTES = 32;
