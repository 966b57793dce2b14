// The per-uid Hello token bucket on a clock the test turns: the burst, the
// refill rate, the retry hint, one uid never spending another's tokens, and
// memory bounded however many uids come by.
import { describe, expect, it } from 'vitest';
import {
  HELLO_RATE_DEFAULTS,
  HelloRateLimitError,
  HelloRateLimiter,
} from '../src/hello-rate-limit.js';

function limiter(options: ConstructorParameters<typeof HelloRateLimiter>[0] = {}) {
  const clock = { now: 0 };
  return { clock, limiter: new HelloRateLimiter(options, () => clock.now) };
}

/** Admits Hellos from `uid` until one is refused; how many went through, and the refusal's hint. */
function drain(l: HelloRateLimiter, uid: number): { admitted: number; retryAfterMs: number } {
  for (let admitted = 0; ; admitted++) {
    const retryAfterMs = l.admit(uid);
    if (retryAfterMs !== null) return { admitted, retryAfterMs };
  }
}

describe('HelloRateLimiter', () => {
  it('defaults: 5000 Hellos/s per uid, burst 10000, 1024 uids', () => {
    const l = new HelloRateLimiter();
    expect({ perSecond: l.perSecond, burst: l.burst, maxUids: l.maxUids }).toEqual(
      HELLO_RATE_DEFAULTS,
    );
    expect(drain(l, 1000).admitted).toBeGreaterThanOrEqual(10_000);
  });

  it('admits a burst, then refuses with the time until the next token', () => {
    const { clock, limiter: l } = limiter({ perSecond: 10, burst: 5 });
    expect(drain(l, 1000)).toEqual({ admitted: 5, retryAfterMs: 100 });
    clock.now = 40;
    // 0.4 of a token has come back: 60 ms more for a whole one.
    expect(l.admit(1000)).toBe(60);
    clock.now = 100;
    expect(l.admit(1000)).toBeNull();
    expect(l.admit(1000)).toBe(100);
  });

  it('refills at the configured rate, never past the burst', () => {
    const { clock, limiter: l } = limiter({ perSecond: 100, burst: 20 });
    drain(l, 7);
    clock.now = 100; // 10 tokens back
    expect(drain(l, 7).admitted).toBe(10);
    clock.now = 60_000; // far more than the burst's worth of time
    expect(drain(l, 7).admitted).toBe(20);
  });

  it('keys by uid: one uid at its limit leaves another untouched', () => {
    const { limiter: l } = limiter({ perSecond: 1, burst: 3 });
    expect(drain(l, 1000).admitted).toBe(3);
    expect(l.admit(1000)).not.toBeNull();
    expect(drain(l, 1001).admitted).toBe(3);
    expect(drain(l, 0).admitted).toBe(3);
  });

  it('tracks at most maxUids, dropping refilled buckets first, then the least recently used', () => {
    const { clock, limiter: l } = limiter({ perSecond: 10, burst: 2, maxUids: 3 });
    drain(l, 1);
    drain(l, 2);
    clock.now = 1000; // 1 and 2 are full again: the same as untracked
    drain(l, 3);
    l.admit(4);
    expect(l.tracked).toBe(2);
    // 3 and 4 are busy; 5 fills the last place, 6 pushes out the least recently used (3).
    l.admit(5);
    l.admit(4);
    l.admit(6);
    expect(l.tracked).toBe(3);
    // 3 forgot it was drained (a fresh burst: the price of the bound), 4 did not.
    expect(l.admit(3)).toBeNull();
    expect(drain(l, 4).admitted).toBe(0);
  });

  it('stays bounded under a stream of distinct uids', () => {
    const { clock, limiter: l } = limiter({ maxUids: 64 });
    for (let uid = 0; uid < 10_000; uid++) {
      clock.now = uid / 10;
      l.admit(uid);
      expect(l.tracked).toBeLessThanOrEqual(64);
    }
  });

  it.each([
    [{ perSecond: 0 }, /perSecond must be a positive number, got 0/],
    [{ burst: -1 }, /burst must be a positive number/],
    [{ maxUids: Number.NaN }, /maxUids must be a positive number/],
  ])('refuses %o with HelloRateLimitError BAD_RATE_LIMIT', (options, message) => {
    const attempt = () => new HelloRateLimiter(options);
    expect(attempt).toThrow(HelloRateLimitError);
    expect(attempt).toThrow(message);
    try {
      attempt();
    } catch (error) {
      expect((error as HelloRateLimitError).code).toBe('BAD_RATE_LIMIT');
    }
  });
});
