import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpawnBudget, spawnBudgetKey } from '../src/spawn-budget.js';

function fakeClock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    set(ms: number) {
      t = ms;
    },
  };
}

describe('SpawnBudget', () => {
  it('grants the reference budget of 3 attempts per 30 s, then says when to retry', () => {
    const clock = fakeClock();
    const budget = new SpawnBudget({ now: clock.now });
    const key = spawnBudgetKey('demo', '1.2.3');
    expect(key).toBe('demo@1.2.3');
    expect(budget.tryAcquire(key)).toEqual({ ok: true });
    clock.advance(1_000);
    expect(budget.tryAcquire(key)).toEqual({ ok: true });
    clock.advance(1_000);
    expect(budget.tryAcquire(key)).toEqual({ ok: true });
    clock.advance(1_000);
    expect(budget.tryAcquire(key)).toEqual({ ok: false, retryAfterMs: 27_000 });
  });

  it('slides: each grant frees up exactly windowMs after it was made', () => {
    const clock = fakeClock(0);
    const budget = new SpawnBudget({ attempts: 3, windowMs: 30_000, now: clock.now });
    for (const at of [0, 10_000, 20_000]) {
      clock.set(at);
      expect(budget.tryAcquire('k').ok).toBe(true);
    }
    clock.set(29_999);
    expect(budget.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 1 });
    clock.set(30_000);
    expect(budget.tryAcquire('k')).toEqual({ ok: true });
    expect(budget.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 10_000 });
    clock.set(40_000);
    expect(budget.tryAcquire('k')).toEqual({ ok: true });
  });

  it('does not count refusals against the budget', () => {
    const clock = fakeClock(0);
    const budget = new SpawnBudget({ attempts: 1, windowMs: 100, now: clock.now });
    expect(budget.tryAcquire('k').ok).toBe(true);
    for (let i = 0; i < 50; i++) {
      clock.advance(1);
      expect(budget.tryAcquire('k').ok).toBe(false);
    }
    clock.set(100);
    expect(budget.tryAcquire('k').ok).toBe(true);
  });

  it('keeps keys apart, and reset(key) frees one key only', () => {
    const clock = fakeClock();
    const budget = new SpawnBudget({ attempts: 1, now: clock.now });
    expect(budget.tryAcquire('a@1.0.0').ok).toBe(true);
    expect(budget.tryAcquire('a@2.0.0').ok).toBe(true);
    expect(budget.tryAcquire('a@1.0.0').ok).toBe(false);
    budget.reset('a@1.0.0');
    budget.reset('never-seen');
    expect(budget.tryAcquire('a@1.0.0').ok).toBe(true);
    expect(budget.tryAcquire('a@2.0.0').ok).toBe(false);
  });

  it('forgets keys whose window has passed, so memory stays bounded', () => {
    const clock = fakeClock(0);
    const budget = new SpawnBudget({ attempts: 2, windowMs: 1_000, now: clock.now });
    for (let i = 0; i < 10_000; i++) budget.tryAcquire(`svc-${i}@1.0.0`);
    expect(budget.size).toBe(10_000);
    clock.advance(1_000);
    budget.tryAcquire('fresh@1.0.0');
    expect(budget.size).toBe(1);
  });

  it('does not let an injected clock that steps back block a key for the length of the step', () => {
    const clock = fakeClock(10_000_000);
    const budget = new SpawnBudget({ attempts: 1, windowMs: 30_000, now: clock.now });
    expect(budget.tryAcquire('k').ok).toBe(true);
    clock.advance(-3_600_000);
    const verdict = budget.tryAcquire('k');
    expect(verdict.ok).toBe(true);
  });

  it('works on its default monotonic clock', () => {
    const budget = new SpawnBudget({ attempts: 1, windowMs: 60_000 });
    expect(budget.tryAcquire('k').ok).toBe(true);
    const refused = budget.tryAcquire('k');
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      expect(refused.retryAfterMs).toBeGreaterThan(59_000);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
  });

  it('rejects nonsense options', () => {
    expect(() => new SpawnBudget({ attempts: 0 })).toThrow(RangeError);
    expect(() => new SpawnBudget({ attempts: 1.5 })).toThrow(RangeError);
    expect(() => new SpawnBudget({ windowMs: 0 })).toThrow(RangeError);
    expect(() => new SpawnBudget({ windowMs: Number.NaN })).toThrow(RangeError);
  });

  it('never grants more than `attempts` in any window, and a retry after the hint succeeds (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.constantFrom('a', 'b', 'c')), {
          maxLength: 200,
        }),
        (attempts, windowMs, steps) => {
          const clock = fakeClock(0);
          const budget = new SpawnBudget({ attempts, windowMs, now: clock.now });
          const granted = new Map<string, number[]>();
          for (const [advance, key] of steps) {
            clock.advance(advance);
            const now = clock.now();
            const verdict = budget.tryAcquire(key);
            const times = granted.get(key) ?? [];
            const inWindow = times.filter((t) => t > now - windowMs).length;
            // A grant happens exactly when fewer than `attempts` are in the window.
            expect(verdict.ok).toBe(inWindow < attempts);
            if (verdict.ok) {
              times.push(now);
              granted.set(key, times);
            } else {
              expect(verdict.retryAfterMs).toBeGreaterThanOrEqual(1);
              expect(verdict.retryAfterMs).toBeLessThanOrEqual(windowMs);
              const freeAt = now + verdict.retryAfterMs;
              expect(times.filter((t) => t > freeAt - windowMs).length).toBeLessThan(attempts);
              expect(times.filter((t) => t > freeAt - 1 - windowMs).length).toBe(attempts);
            }
            expect(budget.size).toBeLessThanOrEqual(3);
          }
        },
      ),
    );
  });
});
