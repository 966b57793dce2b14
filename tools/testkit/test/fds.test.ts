// openFds and openFdSet: counts that move with every open and close.
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openFdSet, openFds } from '../src/fds.js';

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
