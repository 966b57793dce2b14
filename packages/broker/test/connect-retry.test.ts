// connectService's back-off decisions (src/client/retry.ts) with the dice
// fixed: which failures are tried again, the jittered exponential ceilings,
// the broker's retry_after_ms honoured, and giving up at the deadline.
import { ErrorCode } from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import { CONNECT_RETRY_DEFAULTS, ConnectBackoff, pause } from '../src/client/retry.js';

type Failure = Parameters<ConnectBackoff['delayAfter']>[0];
const connect = (errno: string): Failure => ({
  code: 'CONNECT',
  errno,
  refusal: undefined,
  retryable: false,
});
const refused = (code: ErrorCode, retryAfterMs = 0): Failure => ({
  code: 'REFUSED',
  errno: undefined,
  refusal: { code, retryAfterMs },
  retryable: false,
});
const plain = (code: string, retryable = false): Failure => ({
  code,
  errno: undefined,
  refusal: undefined,
  retryable,
});

/** A back-off whose every die roll is `roll` (just under 1: the ceiling itself). */
function backoff(roll: number, options: ConstructorParameters<typeof ConnectBackoff>[0] = {}) {
  const b = new ConnectBackoff(options, () => roll);
  return {
    /** The delay after the next failed attempt. */
    next: (failure: Failure, remainingMs = 60_000) => {
      b.attempts++;
      return b.delayAfter(failure, remainingMs);
    },
  };
}

describe('ConnectBackoff', () => {
  it('documents its figures: 25 ms base, factor 2, 1 s cap, no attempt limit', () => {
    expect(CONNECT_RETRY_DEFAULTS).toEqual({
      baseDelayMs: 25,
      factor: 2,
      maxDelayMs: 1000,
      maxAttempts: Number.POSITIVE_INFINITY,
    });
  });

  it('full jitter under a ceiling that doubles from 25 ms up to 1 s', () => {
    const top = backoff(0.999999);
    const delays = Array.from({ length: 9 }, () => top.next(connect('ENOENT')));
    expect(delays).toEqual([25, 50, 100, 200, 400, 800, 1000, 1000, 1000]);
    const bottom = backoff(0);
    expect(Array.from({ length: 4 }, () => bottom.next(connect('ENOENT')))).toEqual([0, 0, 0, 0]);
    const half = backoff(0.5);
    expect(Array.from({ length: 3 }, () => half.next(connect('ENOENT')))).toEqual([13, 25, 50]);
  });

  it.each(['ENOENT', 'ECONNREFUSED', 'EAGAIN'])(
    'retries a broker that is not listening (%s)',
    (errno) => {
      expect(backoff(0.5).next(connect(errno))).not.toBeNull();
    },
  );

  it('does not retry other connect errors, protocol faults, timeouts or aborts', () => {
    expect(backoff(0.5).next(connect('EACCES'))).toBeNull();
    for (const code of ['PROTOCOL', 'TIMEOUT', 'ABORTED'])
      expect(backoff(0.5).next(plain(code))).toBeNull();
  });

  it('retries a connection closed before the reply, and what connectService marks retryable', () => {
    expect(backoff(0.5).next(plain('CLOSED'))).toBe(13);
    expect(backoff(0.5).next({ ...connect('EACCES'), retryable: true })).toBe(13);
  });

  it.each([ErrorCode.RATE_LIMITED, ErrorCode.SHUTTING_DOWN, ErrorCode.FD_PRESSURE])(
    'retries Refused{%s}, never before its retry_after_ms',
    (code) => {
      const b = backoff(0.5);
      expect(b.next(refused(code, 300))).toBe(313);
      expect(b.next(refused(code, 300))).toBe(325);
      expect(backoff(0).next(refused(code, 300))).toBe(300);
    },
  );

  it('gives up on a retry_after_ms past the longest wait: the broker means "not soon"', () => {
    expect(backoff(0).next(refused(ErrorCode.RATE_LIMITED, 1000))).toBe(1000);
    expect(backoff(0).next(refused(ErrorCode.RATE_LIMITED, 1001))).toBeNull();
    expect(backoff(0).next(refused(ErrorCode.RATE_LIMITED, 28_000))).toBeNull();
  });

  it.each([
    ErrorCode.SERVICE_UNKNOWN,
    ErrorCode.BACKEND_SPAWN_FAILED,
    ErrorCode.VERSION_BLOCKED,
    ErrorCode.PEER_REJECTED,
  ])('does not retry Refused{%s}', (code) => {
    expect(backoff(0.5).next(refused(code, 10))).toBeNull();
  });

  it('gives up when the wait would not end before the deadline, or after maxAttempts', () => {
    expect(backoff(0.999999).next(connect('ENOENT'), 24)).toBeNull();
    expect(backoff(0.999999).next(connect('ENOENT'), 26)).toBe(25);
    const limited = backoff(0.5, { maxAttempts: 3 });
    expect(limited.next(connect('ENOENT'))).not.toBeNull();
    expect(limited.next(connect('ENOENT'))).not.toBeNull();
    expect(limited.next(connect('ENOENT'))).toBeNull();
  });

  it('takes its figures from the options', () => {
    const b = backoff(0.999999, { baseDelayMs: 10, factor: 3, maxDelayMs: 200 });
    expect(Array.from({ length: 5 }, () => b.next(plain('CLOSED')))).toEqual([
      10, 30, 90, 200, 200,
    ]);
  });
});

describe('pause', () => {
  it('waits, and ends early with the reason when its signal aborts (leaving no timer)', async () => {
    const started = performance.now();
    await pause(20, new AbortController().signal);
    expect(performance.now() - started).toBeGreaterThanOrEqual(19);
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const abort = new AbortController();
    const waiting = pause(60_000, abort.signal);
    expect(timers()).toBe(before + 1);
    abort.abort(new Error('deadline'));
    await expect(waiting).rejects.toThrow('deadline');
    expect(timers()).toBe(before);
  });
});
