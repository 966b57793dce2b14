// openFds, openFdSet and quietFdCount: counts that move with every open and close.
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openFdSet, openFds, quietFdCount } from '../src/fds.js';

describe('openFds', () => {
  it('counts one more while a file is open, and the same after it closed', () => {
    const before = openFds();
    const fd = openSync('/dev/null', 'r');
    try {
      expect(openFds()).toBe(before + 1);
    } finally {
      closeSync(fd);
    }
    expect(openFds()).toBe(before);
  });

  it("reads another process's count by pid, and undefined once there is none", () => {
    expect(openFds(process.pid)).toBe(openFds());
    // Above /proc/sys/kernel/pid_max (at most 2^22): never a live pid.
    expect(openFds(2 ** 23)).toBeUndefined();
  });
});

describe('openFdSet', () => {
  // Not checked: that a closed fd leaves the set. Listing /proc/self/fd opens
  // a descriptor of its own, and it takes the lowest free number: that one.
  it('holds every open fd, as many as openFds counts', () => {
    const fd = openSync('/dev/null', 'r');
    try {
      const set = openFdSet();
      expect(set.has(fd)).toBe(true);
      expect([0, 1, 2].every((std) => set.has(std))).toBe(true);
      expect(set.size).toBe(openFds());
    } finally {
      closeSync(fd);
    }
  });
});

describe('quietFdCount', () => {
  it('waits for an fd that closes a moment later, and counts without it', async () => {
    const before = openFds();
    const fd = openSync('/dev/null', 'r');
    setTimeout(() => closeSync(fd), 20);
    expect(await quietFdCount({ intervalMs: 50 })).toBe(before);
  });

  it('gives up at maxMs with the last reading while the count keeps moving', async () => {
    const fds: number[] = [];
    const churn = setInterval(() => fds.push(openSync('/dev/null', 'r')), 10);
    const started = performance.now();
    try {
      await quietFdCount({ intervalMs: 30, maxMs: 150 });
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      clearInterval(churn);
      for (const fd of fds) closeSync(fd);
    }
  });
});
