// BackendEndpointMux: the sans-io classifier of a daemon endpoint's bytes.
// One socket carries the daemon's own legacy wire, identity probes and
// framed requests; `poll(buf)` says which the front of the buffer is, and
// answers probes itself. It never reads, writes or consumes: the caller
// owns its buffer and advances it by `consumed`.
import {
  FRAMING_VERSION,
  type Frame,
  FramingError,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  isFirstParty,
  tryDecodeFramed,
} from '@handoff/protocol';
import { BackendSdkError } from './errors.js';
import {
  type DaemonIdentity,
  encodeIdentityAnswer,
  MalformedProbeError,
  probeAnswerWire,
  probeNonceFromFrame,
} from './probe-answer.js';

/** A consumer's verdict on whether its legacy wire starts the buffer. */
export type LegacyClassification = 'Legacy' | 'NotLegacy' | 'NeedMoreBytes';
export type LegacyDetector = (buf: Uint8Array) => LegacyClassification;

export type MuxVerdict =
  /** Too few bytes to decide or to complete a frame; nothing consumed. */
  | { kind: 'NeedMoreBytes' }
  /** The buffer starts the daemon's legacy wire; nothing consumed. */
  | { kind: 'Legacy' }
  /** A probe was answered: write `reply`, then drop `consumed` bytes. */
  | { kind: 'ProbeAnswered'; reply: Uint8Array; consumed: number }
  /** A frame for a served protocol (any kind): dispatch, then drop `consumed`. */
  | { kind: 'Payload'; frame: Frame; consumed: number };

export type MuxErrorCode =
  | 'FRAMING'
  | 'MALFORMED_PROBE'
  | 'UNEXPECTED_FIRST_PARTY_FRAME'
  | 'UNSERVED_PAYLOAD_PROTOCOL';

/** Every mux error leaves the connection in an unknown state: drop it. */
export class MuxError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:MuxError';
  override readonly name = 'MuxError';
  declare readonly code: MuxErrorCode;
  /** The payload protocol of the offending frame, when one was decoded. */
  readonly payloadProtocol: number | undefined;

  constructor(code: MuxErrorCode, message: string, payloadProtocol?: number, cause?: unknown) {
    super(code, message, { cause });
    this.payloadProtocol = payloadProtocol;
  }
}

export interface BackendEndpointMuxOptions {
  /** The identity this endpoint proves to probes. */
  daemon: DaemonIdentity;
  /** The consumer payload protocols this endpoint serves. */
  servedPayloadProtocols: Iterable<number>;
  /** Runs first, so it wins a byte-0 collision with the framing byte. Default: never legacy. */
  legacyDetector?: LegacyDetector;
}

const hex = (id: number) => `0x${id.toString(16).toUpperCase().padStart(4, '0')}`;
const notLegacy: LegacyDetector = () => 'NotLegacy';
const NEED_MORE: MuxVerdict = Object.freeze({ kind: 'NeedMoreBytes' });
const LEGACY: MuxVerdict = Object.freeze({ kind: 'Legacy' });

export class BackendEndpointMux {
  readonly daemon: DaemonIdentity;
  readonly #served: ReadonlySet<number>;
  readonly #detect: LegacyDetector;
  /** Encoded once: identity answers are the same for every probe. */
  readonly #identityAnswer: Uint8Array;

  constructor(options: BackendEndpointMuxOptions) {
    this.daemon = options.daemon;
    this.#served = new Set(options.servedPayloadProtocols);
    this.#detect = options.legacyDetector ?? notLegacy;
    this.#identityAnswer = encodeIdentityAnswer(options.daemon);
  }

  /** Classifies the front of `buf`; throws MuxError for a connection-fatal fault. */
  poll(buf: Uint8Array): MuxVerdict {
    if (buf.length === 0) return NEED_MORE;
    // The consumer's wire wins ties: only it knows whether a leading 0x01
    // is its own length byte or our framing byte.
    const legacy = this.#detect(buf);
    if (legacy === 'Legacy') return LEGACY;
    if (legacy === 'NeedMoreBytes') return NEED_MORE;
    // Neither legacy nor our framing byte: garbage is the consumer's to
    // reject, with its own error path.
    if (buf[0] !== FRAMING_VERSION) return LEGACY;

    let decoded: ReturnType<typeof tryDecodeFramed>;
    try {
      decoded = tryDecodeFramed(buf);
    } catch (error) {
      if (!(error instanceof FramingError)) throw error;
      throw new MuxError('FRAMING', error.message, undefined, error);
    }
    if (decoded === null) return NEED_MORE;
    const { frame, consumed } = decoded;
    const protocol = frame.payloadProtocol;

    if (protocol === IDENTITY_PROBE_PAYLOAD_PROTOCOL) {
      let nonce: Uint8Array;
      try {
        nonce = probeNonceFromFrame(frame);
      } catch (error) {
        if (!(error instanceof MalformedProbeError)) throw error;
        throw new MuxError(
          'MALFORMED_PROBE',
          `malformed identity probe: ${error.message}`,
          protocol,
          error,
        );
      }
      let reply: Uint8Array;
      try {
        reply = probeAnswerWire(frame, nonce, this.#identityAnswer);
      } catch (error) {
        // The answer echoes the request's trace context: a request near the
        // frame cap can make an answer over it. Such a probe is hostile.
        if (!(error instanceof FramingError)) throw error;
        throw new MuxError(
          'MALFORMED_PROBE',
          `malformed identity probe: its answer cannot be framed (${error.message})`,
          protocol,
          error,
        );
      }
      return { kind: 'ProbeAnswered', reply, consumed };
    }
    if (isFirstParty(protocol)) {
      throw new MuxError(
        'UNEXPECTED_FIRST_PARTY_FRAME',
        `unexpected first-party frame on a backend endpoint (payload protocol ${hex(protocol)})`,
        protocol,
      );
    }
    if (!this.#served.has(protocol)) {
      throw new MuxError(
        'UNSERVED_PAYLOAD_PROTOCOL',
        `frame for unserved payload protocol ${hex(protocol)}`,
        protocol,
      );
    }
    return { kind: 'Payload', frame, consumed };
  }
}
