// The errors of the running-process drop-in (src/rp-compat/): where the RP
// shared broker's socket goes, and reading `.servicedef` files. Both are
// BrokerErrors with a stable code, so a caller can switch on them.
import { BrokerError } from '../errors.js';

export type RpAddressErrorCode = 'PATH_TOO_LONG' | 'UNSAFE_DIRECTORY' | 'NO_UID';

/** The RP broker address cannot be used: too long for sun_path, or its directory is not private. */
export class RpAddressError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:RpAddressError';
  override readonly name = 'RpAddressError';
  declare readonly code: RpAddressErrorCode;
  readonly path: string;
  constructor(code: RpAddressErrorCode, path: string, message: string) {
    super(code, message);
    this.path = path;
  }
}

export type ServicedefErrorCode =
  /** Not protobuf: a truncated field, a bad varint, a wire type that does not fit. */
  | 'MALFORMED'
  /** Over a cap (file size, string length, list length) before anything was allocated. */
  | 'TOO_LARGE'
  /** Well-formed, but a field holds what this broker cannot honour or is invalid. */
  | 'UNSUPPORTED'
  | 'INVALID';

/** A `.servicedef` file that cannot be decoded or mapped; `field` names the RP field at fault. */
export class ServicedefError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:ServicedefError';
  override readonly name = 'ServicedefError';
  declare readonly code: ServicedefErrorCode;
  /** The RP field (`isolation`, `version_allow_list[2]`, …), or `<file>` for the file as a whole. */
  readonly field: string;
  /** The message without the field in front. */
  readonly detail: string;
  constructor(code: ServicedefErrorCode, field: string, message: string) {
    super(code, `${field}: ${message}`);
    this.field = field;
    this.detail = message;
  }
}
