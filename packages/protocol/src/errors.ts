// The package's typed errors. Each has a stable `code` a caller can switch
// on, plus the numbers involved, so no caller ever parses a message string.
import { BrandedError } from './branded-error.js';

/** Every error this package throws; `err instanceof ProtocolError` holds across package copies. */
export class ProtocolError extends BrandedError {
  static override readonly brand: string = '@handoff/protocol:ProtocolError';
}

export type FramingErrorCode =
  | 'UNSUPPORTED_FRAMING_VERSION'
  | 'FRAME_TOO_LARGE'
  | 'UNEXPECTED_EOF'
  | 'DECODE';

export interface FramingErrorDetails {
  /** The framing byte seen (UNSUPPORTED_FRAMING_VERSION). */
  version?: number;
  /** The body length announced by the header (FRAME_TOO_LARGE). */
  length?: number;
  /** The cap in force (FRAME_TOO_LARGE). */
  max?: number;
  /** Bytes left over when the stream ended (UNEXPECTED_EOF). */
  buffered?: number;
  /** The message type that failed to decode (DECODE). */
  typeName?: string;
}

/** Every failure to cut bytes into frames, or to decode them. */
export class FramingError extends ProtocolError {
  static override readonly brand: string = '@handoff/protocol:FramingError';
  override readonly name = 'FramingError';
  declare readonly code: FramingErrorCode;
  readonly version: number | undefined;
  readonly length: number | undefined;
  readonly max: number | undefined;
  readonly buffered: number | undefined;
  readonly typeName: string | undefined;

  constructor(
    code: FramingErrorCode,
    message: string,
    details: FramingErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.version = details.version;
    this.length = details.length;
    this.max = details.max;
    this.buffered = details.buffered;
    this.typeName = details.typeName;
  }
}

export type RegistryErrorCode =
  | 'FIRST_PARTY_COLLISION'
  | 'ID_OUT_OF_RANGE'
  | 'DUPLICATE_ID'
  | 'DUPLICATE_NAME'
  | 'INVALID_NAME';

/** A payload protocol that may not be defined or registered. */
export class RegistryError extends ProtocolError {
  static override readonly brand: string = '@handoff/protocol:RegistryError';
  override readonly name = 'RegistryError';
  declare readonly code: RegistryErrorCode;
  /** The offending payload-protocol id. */
  readonly id: number;

  constructor(code: RegistryErrorCode, message: string, id: number) {
    super(code, message);
    this.id = id;
  }
}

export type SchemaErrorCode = 'GENERATED_CODE_MISSING';

/** The committed generated code does not match the message values (stale: regenerate). */
export class SchemaError extends ProtocolError {
  static override readonly brand: string = '@handoff/protocol:SchemaError';
  override readonly name = 'SchemaError';
  declare readonly code: SchemaErrorCode;
}

export type FrameSyntaxErrorCode = 'MALFORMED';

/**
 * Malformed bytes met by the hand-written Frame decoder; `Frame.decode`
 * wraps it as FramingError DECODE (this is its `cause`).
 */
export class FrameSyntaxError extends ProtocolError {
  static override readonly brand: string = '@handoff/protocol:FrameSyntaxError';
  override readonly name = 'FrameSyntaxError';
  declare readonly code: FrameSyntaxErrorCode;

  constructor(message: string) {
    super('MALFORMED', message);
  }
}
