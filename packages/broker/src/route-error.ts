// Why a route could not get a backend: the RouteError a Hello's Refused is
// made from (its ErrorCode, retry hint and details), raised by the registry
// and its lifecycle helpers; the router turns it into the reply.
import { ErrorCode } from '@handoff/protocol';
import { BrokerError } from './errors.js';

/** A refusal's ErrorCode by name ('RATE_LIMITED', 'BACKEND_SPAWN_FAILED', …): RouteError's `code`. */
export type RouteErrorCode = keyof typeof ErrorCode;

/** Why a route could not get a backend: carries the Refused fields. */
export class RouteError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:RouteError';
  override readonly name = 'RouteError';
  declare readonly code: RouteErrorCode;
  /** The ErrorCode the client's Refused carries (`code` is its name). */
  readonly refusalCode: ErrorCode;
  readonly retryAfterMs: number;
  readonly details: Record<string, string>;
  constructor(
    refusalCode: ErrorCode,
    message: string,
    retryAfterMs = 0,
    details: Record<string, string> = {},
  ) {
    super(ErrorCode[refusalCode] as RouteErrorCode, message);
    this.refusalCode = refusalCode;
    this.retryAfterMs = retryAfterMs;
    this.details = details;
  }
}

/** The refusal for anything asked of a registry that is closing. */
export function shuttingDown(key: string): RouteError {
  return new RouteError(ErrorCode.SHUTTING_DOWN, 'the broker is shutting down', 0, {
    service: key,
  });
}
