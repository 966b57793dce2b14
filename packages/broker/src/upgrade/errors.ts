// The errors of a broker upgrade (src/upgrade/): why an upgrade failed, as
// the old broker reports it (UpgradeError), and why a message on the
// upgrade channel was refused (UpgradeStateError, from wire.ts's parser).
import { BrokerError } from '../errors.js';

export type UpgradeErrorCode =
  /** The broker is shutting down (or already handed over): nothing to upgrade. */
  | 'NOT_SERVING'
  /** The successor's command could not be started (ENOENT, EACCES, …). */
  | 'SUCCESSOR_SPAWN_FAILED'
  /** The successor exited (or closed the upgrade channel) before it was ready. */
  | 'SUCCESSOR_EXITED'
  /** The successor said it cannot take over, and why. */
  | 'SUCCESSOR_FAILED'
  /** The successor was not ready within the deadline. */
  | 'SUCCESSOR_TIMEOUT'
  /** The successor sent something that is not an upgrade message in its place. */
  | 'SUCCESSOR_PROTOCOL'
  /** The old broker could not send its state (a kernel refusal). */
  | 'HANDOVER_FAILED'
  /** Successor side: the old broker went away, or sent no valid state in time. */
  | 'TAKEOVER_FAILED';

/** An upgrade that did not happen; the old broker keeps serving (see handover.ts). */
export class UpgradeError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:UpgradeError';
  override readonly name = 'UpgradeError';
  declare readonly code: UpgradeErrorCode;
  constructor(code: UpgradeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export type UpgradeStateErrorCode =
  /** Not JSON, not an object, or an unknown message type. */
  | 'BAD_MESSAGE'
  /** A wire version this broker does not speak. */
  | 'BAD_VERSION'
  /** A field missing, of the wrong type or out of range. */
  | 'BAD_FIELD'
  /** Over a cap: message bytes, items, parts, string lengths. */
  | 'TOO_LARGE'
  /** The fds attached do not match the items that carry one. */
  | 'FD_MISMATCH';

/** A message on the upgrade channel that was refused (its fds are closed by the receiver). */
export class UpgradeStateError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:UpgradeStateError';
  override readonly name = 'UpgradeStateError';
  declare readonly code: UpgradeStateErrorCode;
  constructor(code: UpgradeStateErrorCode, message: string) {
    super(code, message);
  }
}
