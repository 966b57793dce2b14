// The one timer behind every connectService deadline (src/client/deadline-timer.ts),
// on real timers: each watched item expires once, at or after its deadline
// and in deadline order; an unwatched one never does; a shorter deadline
// watched later still fires first; a deadline past setTimeout's 32-bit range
// neither fires early nor spins; and the timer never holds a process open.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Expiring,
  unwatchDeadline,
  watchDeadline,
  watchedDeadlines,
} from '../src/client/deadline-timer.js';

const expired: string[] = [];
/** An item due `inMs` from now that records its name and how late it expired. */
function due(name: string, inMs: number): Expiring & { lateMs: number } {
  const item = {
    expiresAt: performance.now() + inMs,
    deadlineSlot: -1,
    lateMs: Number.NaN,
    expire() {
      item.lateMs = performance.now() - item.expiresAt;
      expired.push(name);
    },
  };
  return item;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => {
  expired.length = 0;
  expect(watchedDeadlines(), 'a deadline left watched').toBe(0);
});

describe('deadline timer', () => {
  it('expires each item once, in deadline order, never before its deadline', async () => {
    const items = [due('c', 90), due('a', 30), due('b', 60)];
    for (const item of items) watchDeadline(item);
    await sleep(160);
    expect(expired).toEqual(['a', 'b', 'c']);
    for (const item of items) expect(item.lateMs).toBeGreaterThanOrEqual(0);
    expect(watchedDeadlines()).toBe(0);
  });

  it('never expires an item unwatched before its deadline', async () => {
    const kept = due('kept', 40);
    const dropped = due('dropped', 20);
    watchDeadline(kept);
    watchDeadline(dropped);
    unwatchDeadline(dropped);
    await sleep(90);
    expect(expired).toEqual(['kept']);
  });

  it('fires a shorter deadline watched after a longer one at its own time', async () => {
    const long = due('long', 400);
    watchDeadline(long);
    const short = due('short', 30);
    watchDeadline(short);
    await sleep(120);
    expect(expired).toEqual(['short']);
    expect(short.lateMs).toBeLessThan(80);
    unwatchDeadline(long);
  });

  it('watching twice or unwatching twice changes nothing', async () => {
    const a = due('a', 20);
    const b = due('b', 30);
    watchDeadline(a);
    watchDeadline(a);
    watchDeadline(b);
    expect(watchedDeadlines()).toBe(2);
    unwatchDeadline(a);
    unwatchDeadline(a);
    expect(watchedDeadlines()).toBe(1);
    await sleep(80);
    expect(expired).toEqual(['b']);
  });

  it('an expiry that watches and unwatches others leaves the list whole', async () => {
    const late = due('late', 500);
    const chained = due('chained', 40);
    const first = due('first', 20);
    first.expire = () => {
      expired.push('first');
      unwatchDeadline(late);
      watchDeadline(chained);
    };
    watchDeadline(late);
    watchDeadline(first);
    await sleep(100);
    expect(expired).toEqual(['first', 'chained']);
  });

  it('arms again for what is left when items come due one after another', async () => {
    // Many calls with one timeout: later ones never move the timer, and each
    // still expires when due once the earlier ones have.
    const items = Array.from({ length: 5 }, (_, i) => due(`n${i}`, 20 + i * 15));
    for (const item of items) watchDeadline(item);
    await sleep(40);
    unwatchDeadline(items[3]!);
    await sleep(120);
    expect(expired).toEqual(['n0', 'n1', 'n2', 'n4']);
  });

  it('a deadline beyond 2^31 ms neither fires early nor makes Node warn', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const far = due('far', 2 ** 40);
      watchDeadline(far);
      await sleep(50);
      expect(expired).toEqual([]);
      expect(warnings.map((w) => w.name)).not.toContain('TimeoutOverflowWarning');
      unwatchDeadline(far);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('never keeps a process alive: a program whose only work is a watched deadline exits', async () => {
    const module = fileURLToPath(new URL('../src/client/deadline-timer.ts', import.meta.url));
    const program = `
      const { watchDeadline } = await import(${JSON.stringify(module)});
      watchDeadline({ expiresAt: performance.now() + 60_000, deadlineSlot: -1, expire() { process.exitCode = 3; } });
    `;
    const started = performance.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', program],
      {
        stdio: 'inherit',
      },
    );
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(performance.now() - started).toBeLessThan(30_000);
  }, 40_000);
});
