// The per-uid Hello rate limit: one token bucket per verified peer uid, so a
// process flooding the broker with Hellos is answered Refused{RATE_LIMITED,
// retry_after_ms} while every other uid is untouched. Memory is bounded:
// at most `maxUids` buckets, idle (refilled) ones dropped first. Admin
// sessions are not Hellos and never pass through here.
import { BrokerError } from './errors.js';

export interface HelloRateLimitOptions {
  /**
   * Hellos per second each uid may sustain (default 5000: above what one
   * user's clients send in practice, below the broker's own capacity on a
   * 2-core machine, so a flood is refused before it starves other uids).
   */
  perSecond?: number;
  /** How many Hellos a uid may send at once after being idle (default 10000). */
  burst?: number;
  /** The most uids tracked at once (default 1024); see HelloRateLimiter.admit. */
  maxUids?: number;
}

/** A helloRateLimit option that is not a positive number. */
export class HelloRateLimitError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:HelloRateLimitError';
  override readonly name = 'HelloRateLimitError';
  declare readonly code: 'BAD_RATE_LIMIT';
  constructor(message: string) {
    super('BAD_RATE_LIMIT', message);
  }
}

export const HELLO_RATE_DEFAULTS = { perSecond: 5000, burst: 10_000, maxUids: 1024 } as const;

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms, the limiter's clock). */
  at: number;
}

export class HelloRateLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly maxUids: number;
  /** In least-recently-used order: a uid is moved to the end on each Hello. */
  private readonly buckets = new Map<number, Bucket>();

  constructor(
    options: HelloRateLimitOptions = {},
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perSecond = positive(options.perSecond, HELLO_RATE_DEFAULTS.perSecond, 'perSecond');
    this.burst = Math.max(1, positive(options.burst, HELLO_RATE_DEFAULTS.burst, 'burst'));
    this.maxUids = Math.max(1, positive(options.maxUids, HELLO_RATE_DEFAULTS.maxUids, 'maxUids'));
  }

  /**
   * Takes one token from `uid`'s bucket: null when the Hello may go ahead,
   * else how many ms until the next token (the retry_after_ms to send).
   */
  admit(uid: number): number | null {
    const now = this.now();
    let bucket = this.buckets.get(uid);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, at: now };
      this.makeRoom();
    } else {
      this.buckets.delete(uid);
      bucket.tokens = Math.min(
        this.burst,
        bucket.tokens + ((now - bucket.at) * this.perSecond) / 1000,
      );
      bucket.at = now;
    }
    this.buckets.set(uid, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return null;
    }
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / this.perSecond));
  }

  /** How many uids have a bucket now (for tests and diagnostics). */
  get tracked(): number {
    return this.buckets.size;
  }

  /**
   * Before a new uid's bucket is added at the cap: drop every bucket that
   * has refilled (a full bucket is the same as none), and if none has,
   * the least recently used one — which costs that uid at most a fresh burst.
   */
  private makeRoom(): void {
    if (this.buckets.size < this.maxUids) return;
    const now = this.now();
    const fullAfterMs = (this.burst * 1000) / this.perSecond;
    for (const [uid, bucket] of this.buckets) {
      if (now - bucket.at >= fullAfterMs) this.buckets.delete(uid);
    }
    if (this.buckets.size < this.maxUids) return;
    const oldest = this.buckets.keys().next();
    if (!oldest.done) this.buckets.delete(oldest.value);
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new HelloRateLimitError(`helloRateLimit.${name} must be a positive number, got ${value}`);
  return value;
}
