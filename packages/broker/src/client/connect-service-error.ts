// ConnectServiceError: every way connectService can fail, with a stable
// code, the broker's refusal when there was one, and the errno of a failed
// syscall. Its own file so the connection code and connectService share it.
import type { ErrorCode } from '@handoff/protocol';
import { BrokerError } from '../errors.js';

export type ConnectServiceErrorCode =
  /** The broker answered with Refused (see `refusal`). */
  | 'REFUSED'
  /** A socket (the broker's, or backend_pipe on the reconnect route) could not be connected; see `errno`. */
  | 'CONNECT'
  /** The deadline (`timeoutMs`) passed. */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** The broker sent bytes that are not a valid reply (bad framing, over the frame cap, undecodable). */
  | 'PROTOCOL'
  /** The connection ended or failed (EOF, ECONNRESET, EPIPE: see `errno`) before it was usable. */
  | 'CLOSED';

export class ConnectServiceError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:ConnectServiceError';
  override readonly name = 'ConnectServiceError';
  declare readonly code: ConnectServiceErrorCode;
  /** For REFUSED: the broker's code, retry hint and details. */
  readonly refusal:
    | { code: ErrorCode; retryAfterMs: number; details: Record<string, string> }
    | undefined;
  /** The errno name (ENOENT, ECONNREFUSED, ECONNRESET, EPIPE, …) when a syscall failed. */
  readonly errno: string | undefined;
  /**
   * @internal Set when asking the broker again may succeed: reconnecting to
   * backend_pipe failed, or the connection closed before the reply or relay.
   */
  retryable = false;
  /** How many attempts connectService made before giving up with this error. */
  attempts = 1;
  constructor(
    code: ConnectServiceErrorCode,
    message: string,
    refusal?: ConnectServiceError['refusal'],
    options: { errno?: string | undefined; cause?: unknown } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.refusal = refusal;
    this.errno = options.errno;
  }
}
