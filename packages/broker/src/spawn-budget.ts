// How often the broker may try to start one service version: a sliding
// window of granted attempts per key (DESIGN §6; the reference allows 3 per
// 30 s per service/version), so a daemon that crashes on start cannot make
// the broker fork in a loop. Spawning itself and the Refused reply belong to
// the server.

/** The key the server and admin views use for one service version. */
export function spawnBudgetKey(name: string, version: string): string {
  return `${name}@${version}`;
}

export interface SpawnBudgetOptions {
  /** Attempts granted per window; default 3. */
  attempts?: number;
  /** Window length in ms; default 30 000. */
  windowMs?: number;
  /**
   * Clock in ms. Defaults to a monotonic clock: the wall clock can step, and
   * a step backwards would otherwise stretch a window by the size of the step.
   */
  now?: () => number;
}

export type SpawnBudgetVerdict = { ok: true } | { ok: false; retryAfterMs: number };

const GRANTED: SpawnBudgetVerdict = Object.freeze({ ok: true });

export class SpawnBudget {
  private readonly attempts: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  /** Grant times per key, oldest first, never more than `attempts` long. */
  private readonly grants = new Map<string, number[]>();
  private lastSweep = Number.NEGATIVE_INFINITY;

  constructor({
    attempts = 3,
    windowMs = 30_000,
    now = () => performance.now(),
  }: SpawnBudgetOptions = {}) {
    if (!Number.isSafeInteger(attempts) || attempts < 1) {
      throw new RangeError(`attempts must be a positive integer, got ${attempts}`);
    }
    if (!Number.isFinite(windowMs) || windowMs <= 0) {
      throw new RangeError(`windowMs must be a positive number, got ${windowMs}`);
    }
    this.attempts = attempts;
    this.windowMs = windowMs;
    this.now = now;
  }

  /** Takes one attempt for `key`, or says how long until one frees up. */
  tryAcquire(key: string): SpawnBudgetVerdict {
    const now = this.now();
    this.sweep(now);
    const live = this.live(this.grants.get(key), now);
    if (live.length < this.attempts) {
      live.push(now);
      this.grants.set(key, live);
      return GRANTED;
    }
    this.grants.set(key, live);
    // The oldest grant leaves the window first; a refusal is never counted.
    const retryAfterMs = Math.ceil(live[0]! + this.windowMs - now);
    return { ok: false, retryAfterMs: Math.min(Math.max(retryAfterMs, 1), this.windowMs) };
  }

  /** Forgets `key`'s attempts (e.g. once its daemon came up healthy). */
  reset(key: string): void {
    this.grants.delete(key);
  }

  /** The limits, and the attempts each key used in its current window (DUMP, DIAGNOSE). */
  usage(): { attempts: number; windowMs: number; used: { key: string; used: number }[] } {
    const now = this.now();
    const used = [...this.grants]
      .map(([key, times]) => ({ key, used: this.live(times, now).length }))
      .filter((u) => u.used > 0);
    return { attempts: this.attempts, windowMs: this.windowMs, used };
  }

  /** Keys currently remembered; bounded by the keys used within about two windows. */
  get size(): number {
    return this.grants.size;
  }

  /**
   * Grants still inside the window. Times after `now` come from before an
   * injected clock stepped back; they are dropped rather than trusted, which
   * at worst grants one window's attempts early instead of blocking for the
   * length of the step.
   */
  private live(times: number[] | undefined, now: number): number[] {
    if (times === undefined) return [];
    const cutoff = now - this.windowMs;
    return times.filter((t) => t > cutoff && t <= now);
  }

  /** At most once per window, drops keys whose grants have all expired. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs && now >= this.lastSweep) return;
    this.lastSweep = now;
    for (const [key, times] of this.grants) {
      if (this.live(times, now).length === 0) this.grants.delete(key);
    }
  }
}
