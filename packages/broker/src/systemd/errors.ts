// The error socket activation raises: inherited LISTEN_* variables that are
// malformed, or an inherited fd that is not a listening Unix stream socket.
// Notification failures are never thrown (see notify.ts).
import { BrokerError } from '../errors.js';

export type SocketActivationErrorCode = 'BAD_LISTEN_FDS' | 'NOT_A_LISTENER';

/** Socket activation refused: malformed LISTEN_* variables (BAD_LISTEN_FDS) or an fd that is not a listener (NOT_A_LISTENER). */
export class SocketActivationError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:SocketActivationError';
  override readonly name = 'SocketActivationError';
  declare readonly code: SocketActivationErrorCode;
  constructor(code: SocketActivationErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
