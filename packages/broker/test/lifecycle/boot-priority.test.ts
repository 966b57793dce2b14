// The replacement's boot priority without the kernel in the way: the
// autogroup file's parser takes any text, EAGAIN (the kernel's 100 ms limit
// on unprivileged autogroup writes, which root never meets) is retried, a
// restore that keeps failing is reported, and a cancelled one never writes.
// boot-priority.int.test.ts has the same against /proc and real processes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  autogroupOf,
  type BootPriorityIo,
  type BootPriorityOutcome,
  lowerBootPriority,
  lowWeightBudgetMs,
  ROOT_AUTOGROUP,
} from '../../src/lifecycle/boot-priority.js';

/** /proc as the kernel shows it to us: autogroups on, the daemon in a group of its own. */
function fakeProc(failWrites: (text: string, attempt: number) => string | null) {
  const writes: string[] = [];
  let attempt = 0;
  const io: BootPriorityIo = {
    read: (path) =>
      path === '/proc/sys/kernel/sched_autogroup_enabled'
        ? '1\n'
        : path === '/proc/self/autogroup'
          ? '/autogroup-1 nice 0\n'
          : '/autogroup-2 nice 0\n',
    write: (path, text) => {
      expect(path).toBe('/proc/4242/autogroup');
      const code = failWrites(text, attempt++);
      if (code !== null) throw Object.assign(new Error(`${code}: refused`), { code });
      writes.push(text);
    },
  };
  return { io, writes };
}

function lower(io: BootPriorityIo, restoreAfterMs = 60_000) {
  const heard: [BootPriorityOutcome, string][] = [];
  const priority = lowerBootPriority(4242, {
    nice: 10,
    restoreAfterMs,
    io,
    notice: (outcome, detail) => heard.push([outcome, detail]),
  });
  return { priority, heard };
}

describe('autogroupOf', () => {
  it('reads the kernel format and nothing else', () => {
    expect(autogroupOf('/autogroup-9618 nice 0\n')).toEqual({ group: '/autogroup-9618', nice: 0 });
    expect(autogroupOf('/autogroup-3 nice -5')).toEqual({ group: '/autogroup-3', nice: -5 });
    // The kernel shows the root autogroup (never a setsid() since boot) as an empty file.
    expect(autogroupOf('')).toEqual({ group: ROOT_AUTOGROUP, nice: 0 });
    expect(autogroupOf('\n')).toEqual({ group: ROOT_AUTOGROUP, nice: 0 });
    for (const text of ['nice 0', '/autogroup-1 nice', '/autogroup-1 nice x', 'a b c d'])
      expect(autogroupOf(text)).toBeNull();
  });

  it('never throws on random or mutated text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .tuple(fc.string(), fc.integer({ min: -100, max: 100 }), fc.string())
            .map(([g, n, tail]) => `/autogroup-${g} nice ${n}${tail}`),
        ),
        (text) => {
          const parsed = autogroupOf(text);
          if (parsed !== null) expect(Number.isInteger(parsed.nice)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('lowerBootPriority', () => {
  it('retries EAGAIN on the way down and on the way back', async () => {
    // The first write of each value is refused once, as the kernel does within 100 ms of another.
    const { io, writes } = fakeProc((_text, attempt) => (attempt % 2 === 0 ? 'EAGAIN' : null));
    const { priority, heard } = lower(io);
    expect(priority).not.toBeNull();
    await priority!.restore();
    expect(writes).toEqual(['10', '0']);
    expect(heard.map(([outcome]) => outcome)).toEqual(['lowered', 'restored']);
  });

  it('reports a restore the kernel keeps refusing', async () => {
    const { io, writes } = fakeProc((text) => (text === '0' ? 'EAGAIN' : null));
    const { priority, heard } = lower(io);
    const started = performance.now();
    await priority!.restore();
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(writes).toEqual(['10']);
    expect(heard.at(-1)?.[0]).toBe('restore-failed');
    expect(heard.at(-1)?.[1]).toContain('EAGAIN');
  });

  it('restores by itself after restoreAfterMs, once', async () => {
    const { io, writes } = fakeProc(() => null);
    const { priority, heard } = lower(io, 50);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(writes).toEqual(['10', '0']);
    await priority!.restore();
    expect(writes).toEqual(['10', '0']);
    expect(heard.map(([outcome]) => outcome)).toEqual(['lowered', 'restored']);
  });

  it('writes nothing more once cancelled (the daemon exited: its pid is not its own)', async () => {
    const { io, writes } = fakeProc(() => null);
    const { priority } = lower(io, 20);
    priority!.cancel();
    await new Promise((resolve) => setTimeout(resolve, 60));
    await priority!.restore();
    expect(writes).toEqual(['10']);
  });

  it('says nothing when the daemon is already gone, and stops on other errors', async () => {
    const gone = fakeProc((text) => (text === '0' ? 'ESRCH' : null));
    const a = lower(gone.io);
    await a.priority!.restore();
    expect(a.heard.map(([outcome]) => outcome)).toEqual(['lowered']);
    const refused = fakeProc(() => 'EPERM');
    const b = lower(refused.io);
    await b.priority!.restore();
    expect(refused.writes).toEqual([]);
    expect(b.heard).toEqual([['unsupported', 'EPERM: refused']]);
  });

  it('lowers a daemon in a group of its own from a broker in the root autogroup', async () => {
    const writes: string[] = [];
    const fromRoot: BootPriorityIo = {
      read: (path) =>
        path.endsWith('enabled')
          ? '1\n'
          : path === '/proc/self/autogroup'
            ? ''
            : '/autogroup-8 nice 0\n',
      write: (path, text) => writes.push(`${path} ${text}`),
    };
    const { priority, heard } = lower(fromRoot);
    expect(priority).not.toBeNull();
    await priority!.restore();
    expect(writes).toEqual(['/proc/4242/autogroup 10', '/proc/4242/autogroup 0']);
    expect(heard.map(([outcome]) => outcome)).toEqual(['lowered', 'restored']);
  });

  it('leaves alone a daemon in the root autogroup, whatever group we are in', () => {
    const writes: string[] = [];
    for (const ours of ['', '/autogroup-7 nice 0\n']) {
      const inRoot: BootPriorityIo = {
        read: (path) =>
          path.endsWith('enabled') ? '1\n' : path === '/proc/self/autogroup' ? ours : '',
        write: (_path, text) => writes.push(text),
      };
      const { priority, heard } = lower(inRoot);
      expect(priority).toBeNull();
      expect(heard).toEqual([['unsupported', 'pid 4242 is not in an autogroup of its own']]);
    }
    expect(writes).toEqual([]);
  });

  it('leaves alone a daemon in our own autogroup, or autogroups turned off', () => {
    const writes: string[] = [];
    const shared: BootPriorityIo = {
      read: (path) => (path.endsWith('enabled') ? '1' : '/autogroup-7 nice 0'),
      write: (_path, text) => writes.push(text),
    };
    expect(lower(shared).priority).toBeNull();
    const off: BootPriorityIo = {
      ...shared,
      read: (path) => (path.endsWith('enabled') ? '0' : ''),
    };
    const { priority, heard } = lower(off);
    expect(priority).toBeNull();
    expect(heard).toEqual([['unsupported', 'kernel.sched_autogroup_enabled is not 1']]);
    const missing: BootPriorityIo = {
      ...shared,
      read: () => {
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      },
    };
    expect(lower(missing).priority).toBeNull();
    expect(writes).toEqual([]);
  });
});

describe('lowWeightBudgetMs', () => {
  it('is three times the last boot, at least 1 s, 2 s when none was seen, never past half the deadline', () => {
    expect(lowWeightBudgetMs(300, 8000)).toBe(1000);
    expect(lowWeightBudgetMs(1000, 8000)).toBe(3000);
    expect(lowWeightBudgetMs(5000, 8000)).toBe(4000);
    expect(lowWeightBudgetMs(undefined, 8000)).toBe(2000);
    expect(lowWeightBudgetMs(undefined, 3000)).toBe(1500);
    expect(lowWeightBudgetMs(100, 1001)).toBe(500);
  });
});
