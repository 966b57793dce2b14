// The server side of an identity probe (DESIGN §2.4): validate the
// challenge, and build the answer — nonce echo, the daemon's identity, and
// the legacy SHA-256 trailer older brokers still read as field 3.
import {
  DaemonProcess,
  encodeFramed,
  type Frame,
  FrameKind,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  PayloadEncoding,
  PROBE_NONCE_BYTES,
  responseFrame,
} from '@handoff/protocol';
import { BackendSdkError } from './errors.js';

/** What a daemon proves in answer to a probe. */
export interface DaemonIdentity {
  process: DaemonProcess;
  /** SHA-256 of the executable: sent as the legacy field-3 trailer. */
  legacyExeSha256: Uint8Array;
}

const SHA256_BYTES = 32;
/** Tag of field 3, wire type 2, and the 32-byte length: `0x1A 0x20`. */
const LEGACY_TRAILER_PREFIX = [0x1a, 0x20] as const;

/** Why a probe request is refused; the connection is then dropped. */
export class MalformedProbeError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:MalformedProbeError';
  override readonly name = 'MalformedProbeError';
  declare readonly code: 'MALFORMED_PROBE';
  constructor(message: string) {
    super('MALFORMED_PROBE', message);
  }
}

/** Checks a probe challenge; returns its nonce (a view into the frame). */
export function probeNonceFromFrame(frame: Frame): Uint8Array {
  if (frame.kind !== FrameKind.REQUEST) {
    throw new MalformedProbeError(`probe frame kind ${frame.kind} is not REQUEST`);
  }
  if (frame.payloadEncoding !== PayloadEncoding.NONE) {
    throw new MalformedProbeError(`probe payload encoding ${frame.payloadEncoding} is not NONE`);
  }
  if (frame.payload.length !== PROBE_NONCE_BYTES) {
    throw new MalformedProbeError(
      `probe nonce is ${frame.payload.length} bytes, expected exactly ${PROBE_NONCE_BYTES}`,
    );
  }
  return frame.payload;
}

/**
 * The identity part of every answer, encoded once: `DaemonProcess` then
 * the legacy trailer. A probe answer is the nonce followed by these bytes.
 */
export function encodeIdentityAnswer(identity: DaemonIdentity): Uint8Array {
  if (identity.legacyExeSha256.length !== SHA256_BYTES) {
    throw new RangeError(`legacyExeSha256 must be ${SHA256_BYTES} bytes`);
  }
  const body = DaemonProcess.encode(identity.process);
  const out = new Uint8Array(body.length + LEGACY_TRAILER_PREFIX.length + SHA256_BYTES);
  out.set(body, 0);
  out.set(LEGACY_TRAILER_PREFIX, body.length);
  out.set(identity.legacyExeSha256, body.length + LEGACY_TRAILER_PREFIX.length);
  return out;
}

/** The framed RESPONSE to `request`: request id and trace context echoed. */
export function probeAnswerWire(
  request: Frame,
  nonce: Uint8Array,
  identityAnswer: Uint8Array,
): Uint8Array {
  const payload = new Uint8Array(nonce.length + identityAnswer.length);
  payload.set(nonce, 0);
  payload.set(identityAnswer, nonce.length);
  return encodeFramed(
    responseFrame(request, { payload, payloadProtocol: IDENTITY_PROBE_PAYLOAD_PROTOCOL }),
  );
}
