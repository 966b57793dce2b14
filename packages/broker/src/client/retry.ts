// connectService's back-off: which failures are worth asking the broker
// again about, and how long to wait first (jittered exponential, honouring
// the broker's retry_after_ms), so a thousand clients starting at once do
// not storm a broker that is starting, restarting or rate limiting them.
import { ErrorCode } from '@handoff/protocol';
import type { Cancellable } from './cancellation.js';

export interface ConnectRetryOptions {
  /** The first back-off's ceiling (default 25 ms). */
  baseDelayMs?: number;
  /** Each further back-off's ceiling grows by this factor (default 2). */
  factor?: number;
  /**
   * No back-off waits longer than this (default 1000 ms); a Refused whose
   * retry_after_ms is longer is returned at once (the broker means "not soon").
   */
  maxDelayMs?: number;
  /** Attempts in all, the first included (default: unlimited; the deadline caps them). */
  maxAttempts?: number;
  /** Told before each wait: which attempt failed (1 = the first), how, and the wait ahead. */
  onRetry?: (retry: { attempt: number; delayMs: number; error: Error }) => void;
}

export const CONNECT_RETRY_DEFAULTS = {
  baseDelayMs: 25,
  factor: 2,
  maxDelayMs: 1000,
  maxAttempts: Number.POSITIVE_INFINITY,
} as const;

/** Connect errnos that mean "no broker listening yet (or its backlog is full)". */
const RETRYABLE_ERRNOS = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

/** Refusals that mean "come back shortly". */
const RETRYABLE_REFUSALS = new Set<ErrorCode>([
  ErrorCode.RATE_LIMITED,
  ErrorCode.SHUTTING_DOWN,
  ErrorCode.FD_PRESSURE,
]);

/** What a failed attempt looks like to the back-off (a ConnectServiceError's fields). */
export interface AttemptFailure {
  code: string;
  errno: string | undefined;
  refusal: { code: ErrorCode; retryAfterMs: number } | undefined;
  /** Set by connectService when asking the broker again may reach a fresh daemon. */
  retryable: boolean;
}

export class ConnectBackoff {
  private readonly base: number;
  private readonly factor: number;
  private readonly max: number;
  private readonly maxAttempts: number;
  readonly onRetry: ConnectRetryOptions['onRetry'];
  /** Attempts made so far. */
  attempts = 0;

  constructor(
    options: ConnectRetryOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.base = options.baseDelayMs ?? CONNECT_RETRY_DEFAULTS.baseDelayMs;
    this.factor = options.factor ?? CONNECT_RETRY_DEFAULTS.factor;
    this.max = options.maxDelayMs ?? CONNECT_RETRY_DEFAULTS.maxDelayMs;
    this.maxAttempts = options.maxAttempts ?? CONNECT_RETRY_DEFAULTS.maxAttempts;
    this.onRetry = options.onRetry;
  }

  /**
   * After attempt number `this.attempts` failed with `failure`: how long to
   * wait before the next one, or null to give up (not retryable, out of
   * attempts, or the wait would not end before `remainingMs`).
   */
  delayAfter(failure: AttemptFailure, remainingMs: number): number | null {
    if (this.attempts >= this.maxAttempts) return null;
    // Full jitter: uniform in [0, ceiling), the ceiling doubling per attempt.
    const ceiling = Math.min(this.max, this.base * this.factor ** (this.attempts - 1));
    const jitter = this.random() * ceiling;
    let delay: number | null = null;
    if (failure.code === 'REFUSED') {
      const refusal = failure.refusal;
      if (refusal !== undefined && RETRYABLE_REFUSALS.has(refusal.code)) {
        // Never before the broker's hint, spread over the back-off after it.
        if (refusal.retryAfterMs <= this.max) delay = refusal.retryAfterMs + jitter;
      }
    } else if (
      failure.retryable ||
      failure.code === 'CLOSED' ||
      (failure.code === 'CONNECT' &&
        failure.errno !== undefined &&
        RETRYABLE_ERRNOS.has(failure.errno))
    ) {
      delay = jitter;
    }
    if (delay === null || delay >= remainingMs) return null;
    return Math.round(delay);
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function pause(ms: number, signal: Cancellable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
